"""Test helper: `tuneforge train` in a real process, as a user runs it, and what a clean stop looks like."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a `python -m tuneforge` process: this one's, one thread, offline, our sources first."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return {**env, **extra}


def train_process(cfg: dict, folder: Path, name: str, **env: str) -> subprocess.Popen:
    """`python -m tuneforge train <folder>/<name>.yaml` in its own process (one thread, offline)."""
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "tuneforge", "train", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(**env),
    )


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    """Until `predicate()` holds; fails at once if the process ends first, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"process ended early ({proc.returncode}): {err[-3000:]}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def assert_interrupted(proc: subprocess.Popen, err: str) -> None:
    """A signal's clean stop: exit 130, no traceback, `tuneforge: interrupted` as the last line."""
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "tuneforge: interrupted"
