# The README's two commands: `make demo` and `make test`. Each bootstraps .venv on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch goes in first and pinned: an unpinned range can pull a multi-GB CUDA build onto a CPU machine.
TORCH  ?= torch==2.13.0
BASE   := $(VENV)/.installed-base
DEV    := $(VENV)/.installed-dev

export HF_HUB_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv demo test test-all test-browser lint format clean

venv: $(BASE)

# What `make demo` and real use need: torch, then TuneForge with its dependencies.
$(BASE): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e .
	touch $(BASE)

# What the tests need on top: reference libraries, QLoRA backends, llama-cpp-python (compiles llama.cpp once,
# about 5 minutes on 2 idle cores; pip caches the wheel), the openai client, playwright, DeepSpeed.
$(DEV): $(BASE)
	CMAKE_ARGS="-DGGML_NATIVE=off" $(BIN)/python -m pip install -q -e ".[dev]"
# DeepSpeed builds against the installed torch, so no build isolation (and after torch); its ops JIT-compile
# on first use (70-105 s once, cached). tests/integration/test_deepspeed.py runs ZeRO-2/3 on 2 CPU processes.
	$(BIN)/python -m pip install -q setuptools wheel
	$(BIN)/python -m pip install -q --no-build-isolation "deepspeed>=0.16"
	touch $(DEV)

demo: venv
	$(BIN)/python scripts/demo.py

# One torch thread per test process: two busy processes on two cores otherwise collapse.
# Includes the browser tests (tests/e2e, 4-5 minutes of it; chromium is apt-installed when missing).
test: $(DEV)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m "not gpu" tests

# The Web UI in a real browser (Playwright + Debian's chromium; the test set-up apt-installs chromium and
# fonts-wqy-zenhei when missing) alone: 4-5 minutes on 2 shared cores. Saves docs/images/webui-*.png.
test-browser: $(DEV)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m browser tests/e2e

lint: $(DEV)
	$(BIN)/ruff check src tests scripts benchmarks
	$(BIN)/ruff format --check src tests scripts benchmarks

format: $(DEV)
	$(BIN)/ruff format src tests scripts benchmarks
	$(BIN)/ruff check --fix src tests scripts benchmarks

clean:
	rm -rf $(VENV) saves/demo .pytest_cache
