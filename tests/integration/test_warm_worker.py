"""`tuneforge warm start`, then `tuneforge train` as a user runs it: the run happens in the worker's forked child and
ends as a cold run would (the same losses and weights, its one-line errors and exit codes, Ctrl-C, a killed
caller); a config that needs a backend the worker holds back runs cold."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file

from processes import assert_interrupted, cli_env, train_process, wait_for
from tuneforge.warm.address import socket_path
from tuneforge.warm.server import decline_reason


def warm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tuneforge", "warm", *args], capture_output=True, text=True, env=cli_env(), timeout=300
    )


def runs_served() -> int:
    status = warm("status")
    assert status.returncode == 0 and "warm worker pid" in status.stdout, status.stdout + status.stderr
    return int(status.stdout.split(" runs,")[0].rsplit(" ", 1)[1])


@pytest.fixture
def worker(monkeypatch):
    """A warm worker of the test's environment, in a socket folder of its own (short: a socket path has ~107
    bytes), stopped afterwards; yields the worker's pid."""
    runtime = tempfile.mkdtemp(prefix="tfw", dir="/tmp")
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
    started = warm("start", "--idle-minutes", "10")
    assert started.returncode == 0 and "warm worker ready" in started.stdout, started.stdout + started.stderr
    assert socket_path(cli_env()).exists()
    yield int(started.stdout.split("(pid ")[1].split(")")[0])
    stopped = warm("stop")
    assert stopped.returncode == 0 and "stopped 1 warm worker" in stopped.stdout, stopped.stdout + stopped.stderr
    assert not socket_path(cli_env()).exists()
    shutil.rmtree(runtime, ignore_errors=True)


def losses(out: Path) -> list[float]:
    lines = (out / "trainer_log.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if "loss" in r]


def long_run_under_way(train_overrides, tmp_path) -> tuple[subprocess.Popen, Path]:
    """A 2,000-step run through the worker that has logged two steps."""
    out = tmp_path / "long"
    proc = train_process(train_overrides("lora", output_dir=str(out), max_steps=2000), tmp_path, "long")
    wait_for(lambda: (out / "trainer_log.jsonl").is_file() and len(losses(out)) >= 2, proc)
    return proc, out


@pytest.mark.slow
def test_a_run_in_the_worker_equals_a_cold_run(worker, train_overrides, tmp_path):
    warm_cfg = train_overrides("lora", output_dir=str(tmp_path / "warm"))
    proc = train_process(warm_cfg, tmp_path, "warm")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "Done. Saved to" in out  # the child's stdout is the caller's
    assert runs_served() == 1

    cold = train_process(
        train_overrides("lora", output_dir=str(tmp_path / "cold")), tmp_path, "cold", TUNEFORGE_WARM="0"
    )
    _, err = cold.communicate(timeout=300)
    assert cold.returncode == 0, err[-3000:]
    assert runs_served() == 1  # TUNEFORGE_WARM=0: this one ran in its own process

    assert len(losses(tmp_path / "warm")) == 12 and losses(tmp_path / "warm") == losses(tmp_path / "cold")
    a, b = (load_file(tmp_path / name / "adapter_model.safetensors") for name in ("warm", "cold"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_bad_input_through_the_worker_is_one_line_and_exit_2(worker, train_overrides, tmp_path):
    proc = train_process(train_overrides("lora", learning_rate="fast"), tmp_path, "bad")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and out == ""
    assert err.strip().count("\n") == 0 and "learning_rate" in err and "Traceback" not in err, err
    assert runs_served() == 1
    assert not (tmp_path / "out-lora").exists()


@pytest.mark.slow
def test_a_config_that_needs_a_held_back_backend_runs_cold(worker, train_overrides, tmp_path):
    """The worker holds bitsandbytes / HQQ / DeepSpeed back; a QLoRA config goes back to its caller, which runs it
    as it would without a worker (here: to the config's one-line error, from the caller's own process)."""
    cfg = train_overrides("lora", quantization_bit=4, quantization_method="bnb", learnin_rate=1)
    path = tmp_path / "qlora.yaml"
    path.write_text(json.dumps(cfg))
    assert decline_reason(["train", str(path)]) == "this config uses bitsandbytes"
    assert decline_reason(["train", str(path), "quantization_bit=null"]) is None
    proc = train_process(cfg, tmp_path, "qlora")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "learnin_rate" in err and err.strip().count("\n") == 0, err


@pytest.mark.slow
def test_ctrl_c_reaches_the_run_in_the_worker(worker, train_overrides, tmp_path):
    proc, out = long_run_under_way(train_overrides, tmp_path)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert_interrupted(proc, err)
    steps = len(losses(out))
    assert (out / f"checkpoint-{steps}" / "trainer_state.json").is_file()  # stopped at a step, and saved there


@pytest.mark.slow
def test_a_killed_caller_takes_its_run_with_it(worker, train_overrides, tmp_path):
    proc, out = long_run_under_way(train_overrides, tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 30
    while psutil.Process(worker).children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert psutil.Process(worker).children() == []  # the run went with its `tuneforge train`
    logged = len(losses(out))
    time.sleep(1.0)
    assert len(losses(out)) == logged < 2000
