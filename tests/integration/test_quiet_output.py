"""What `tuneforge train` prints is ours: a plain LoRA run's stdout + stderr holds our log lines, the progress bar
(with the metrics the Trainer writes above it) and our result line, nothing from other libraries; `--debug` shows
the libraries' warnings, through our logger. The optional backends a run does not use are never imported.

Runs the real CLI in its own process, as a user (or the Web UI's job runner, whose log pane shows this output) does.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tuneforge.utils.allocator import allocator_to_preload

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ("bitsandbytes", "deepspeed", "hqq")
# `python -m tuneforge ...`, then which optional backends (and scipy, held back while the libraries import) the
# process imported, and whether scipy can still be imported at the end (a reward function may), into $MODULES_OUT.
PROBE = f"""
import importlib.util, json, os, runpy, sys
try:
    runpy.run_module("tuneforge", run_name="__main__", alter_sys=True)
finally:
    imported = {{name: sys.modules.get(name) is not None for name in {(*BACKENDS, "scipy")!r}}}
    imported["scipy importable"] = importlib.util.find_spec("scipy") is not None
    with open(os.environ["MODULES_OUT"], "w") as f:
        json.dump(imported, f)
"""
SCIPY = {"scipy": False, "scipy importable": True}

OURS = re.compile(r"\[\d\d:\d\d:\d\d\] (INFO|WARNING|ERROR|CRITICAL) tuneforge(\.\w+)*: \S")
DEBUG = re.compile(r"\[\d\d:\d\d:\d\d\] DEBUG ([\w.]+): \S")
RESULT = re.compile(r"Done\. Saved to \S")
# tqdm's bar as the Trainer draws it (no description): ` 33%|███▎      | 1/3 [00:00<00:00, 11.43it/s]`
BAR = re.compile(r"\s*\d{1,3}%\|[^|\r\n]*\| \d+/\d+ \[[^\]\r\n]*\]")


def foreign_lines(output: str) -> list[str]:
    """Every piece of `output` that is not ours. The progress bar redraws itself with carriage returns, so the
    pieces are what lies between line feeds and carriage returns; bar frames drawn back to back are peeled off
    the front, and what is left must be empty (the bar clearing itself), one of our log lines, our result line,
    or a dict of metrics (what the Trainer writes above its bar)."""
    foreign = []
    for piece in re.split(r"[\r\n]", output):
        rest = piece
        while match := BAR.match(rest):
            rest = rest[match.end() :]
        rest = rest.strip()
        if not rest or OURS.match(rest) or RESULT.match(rest) or _is_metrics(rest):
            continue
        foreign.append(piece)
    return foreign


def _is_metrics(text: str) -> bool:
    try:
        return isinstance(ast.literal_eval(text), dict)
    except (ValueError, SyntaxError):
        return False


def run_cli(cfg: dict, folder: Path, *flags: str) -> tuple[str, dict[str, bool]]:
    """`python -m tuneforge train cfg.yaml [flags]`: its stdout + stderr, and which optional backends it imported."""
    path = folder / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    modules = folder / "modules.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "MODULES_OUT": str(modules)}
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    for key in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "train", str(path), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, in the order a terminal (or the job's train.log) shows it
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc.stdout, json.loads(modules.read_text(encoding="utf-8"))


@pytest.fixture
def lora_cfg(train_overrides, tmp_path):
    # as a user runs it: the progress bar on (the shared test config turns it off)
    return train_overrides("lora", max_steps=3, disable_tqdm=False, output_dir=str(tmp_path / "out"))


@pytest.mark.slow
def test_plain_lora_prints_only_our_lines_and_imports_no_optional_backend(lora_cfg, tmp_path):
    out, modules = run_cli(lora_cfg, tmp_path)
    assert foreign_lines(out) == [], out
    assert any(OURS.match(line) for line in out.splitlines()), out  # the classifier sees our lines at all
    assert RESULT.search(out) and BAR.search(out) and "'loss':" in out, out
    assert modules == {**dict.fromkeys(BACKENDS, False), **SCIPY}

    debug, _ = run_cli({**lora_cfg, "output_dir": str(tmp_path / "out-debug")}, tmp_path, "--debug")
    library = {m.group(1) for line in debug.splitlines() if (m := DEBUG.match(line))}
    assert {n for n in library if not n.startswith("tuneforge")}, debug  # other libraries' warnings show
    assert _our_loggers(out) <= _our_loggers(debug), debug  # and nothing of ours is lost


def _our_loggers(output: str) -> set[tuple[str, str]]:
    return {(m.group(1), m.group(0).split()[2]) for line in output.splitlines() if (m := OURS.match(line))}


@pytest.mark.slow
def test_qlora_from_the_cli_still_imports_bitsandbytes(lora_cfg, tmp_path):
    out, modules = run_cli({**lora_cfg, "quantization_bit": 4}, tmp_path)
    assert modules == {"bitsandbytes": True, "deepspeed": False, "hqq": False, **SCIPY}
    assert foreign_lines(out) == [], out  # bitsandbytes' own lines reach us at DEBUG too


@pytest.mark.slow
def test_train_runs_on_jemalloc_where_the_system_has_it(lora_cfg, tmp_path, monkeypatch):
    """The CLI re-executes itself on jemalloc when this machine has it (utils/allocator.py), else keeps glibc;
    TUNEFORGE_MALLOC=system keeps glibc. The run finishes either way."""
    found = allocator_to_preload()  # this machine: jemalloc's path (Debian's libjemalloc2), or None
    out, _ = run_cli({**lora_cfg, "max_steps": 1}, tmp_path)
    assert f"memory allocator: {'jemalloc' if found else 'glibc'}" in out, out
    monkeypatch.setenv("TUNEFORGE_MALLOC", "system")
    out, _ = run_cli({**lora_cfg, "max_steps": 1, "output_dir": str(tmp_path / "out-system")}, tmp_path)
    assert "memory allocator: glibc" in out and RESULT.search(out), out
