# The README's two commands: `make demo` and `make test`. Each bootstraps .venv on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch goes in first and pinned: an unpinned range can pull a multi-GB CUDA build onto a CPU machine.
TORCH  ?= torch==2.13.0
BASE   := $(VENV)/.installed-base
DEV    := $(VENV)/.installed-dev
# The exact versions the suite last passed with: every install below takes them (pyproject.toml keeps ranges for
# people who pip install TuneForge into their own environment). `make test-latest` then `make lock` refresh it.
LOCK   := requirements/lock.txt
PIN    ?= -c $(LOCK)
LATEST := .venv-latest

export HF_HUB_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv demo test test-all test-latest lock test-browser lint format clean

venv: $(BASE)

# What `make demo` and real use need: torch, then TuneForge with its dependencies.
$(BASE): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip $(PIN)
	$(BIN)/python -m pip install -q "$(TORCH)" $(PIN)
	$(BIN)/python -m pip install -q $(UPGRADE) -e . $(PIN)
	touch $(BASE)

# What the tests need on top: reference libraries, QLoRA backends, the openai client, playwright, DeepSpeed.
$(DEV): $(BASE)
	$(BIN)/python -m pip install -q $(UPGRADE) -e ".[dev]" $(PIN)
# DeepSpeed builds against the installed torch, so no build isolation (and after torch); its ops JIT-compile
# on first use (70-105 s once, cached). tests/integration/test_deepspeed.py runs ZeRO-2/3 on 2 CPU processes.
	$(BIN)/python -m pip install -q $(UPGRADE) setuptools wheel $(PIN)
	$(BIN)/python -m pip install -q $(UPGRADE) --no-build-isolation "deepspeed>=0.16" $(PIN)
	touch $(DEV)

# llama-cpp-python, for the test that runs an exported GGUF in llama.cpp: its sdist compiles llama.cpp (about
# 5 minutes on 2 idle cores, once; pip caches the wheel), so only `make test-all` installs it.
$(VENV)/.installed-llama-cpp: $(DEV)
	CMAKE_ARGS="-DGGML_NATIVE=off" $(BIN)/python -m pip install -q $(UPGRADE) -e ".[llama-cpp]" $(PIN)
	touch $@

demo: venv
	$(BIN)/python scripts/demo.py

# One torch thread per test process, two test processes (pytest-xdist; a file's tests stay on one, so its
# module fixtures are built once): about 30 minutes on 2 cores (2026-12-07), most of it the browser tests and the
# multi-process runs (sweeps, GRPO resume, DeepSpeed, Ray). Includes the browser tests (tests/e2e; chromium is
# apt-installed when missing). XDIST= runs them in one process.
XDIST ?= -n 2 --dist loadfile
test: $(DEV)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m "not gpu and not llama_cpp" $(XDIST) tests

# Everything that runs on this machine, llama.cpp included.
test-all: $(VENV)/.installed-llama-cpp
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m "not gpu" $(XDIST) tests

# The suite on the newest releases (a fresh .venv-latest, no lock, eager upgrades; torch stays $(TORCH), a
# hardware choice). When it passes, `make lock` writes those versions into the lock.
test-latest:
	mkdir -p $(LATEST) && rm -f $(LATEST)/.installed-* && echo "$(TORCH)" > $(LATEST)/torch.txt
	$(MAKE) test VENV=$(LATEST) PIN="-c $(LATEST)/torch.txt" UPGRADE="--upgrade --upgrade-strategy eager"
	touch $(LATEST)/.passed

lock:
	test -f $(LATEST)/.passed || { echo "run make test-latest first: the lock holds what the suite passed with"; exit 2; }
	{ echo "# pip constraints: the versions \`make test-latest\` last passed with ($$(date -u +%F), $$(uname -m))."; \
	  echo "# Written by \`make lock\`; make demo / make test / .ci/run install exactly these."; \
	  $(LATEST)/bin/python -m pip freeze --all --exclude-editable | sed -E 's/^(torch==[^+]*)\+.*/\1/'; } > $(LOCK)

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
