"""A GRPO run stopped by SIGTERM (the Web UI's Abort), then by kill -9, then run again with the same command ends
with the adapter, bit for bit, of a run never interrupted. Checkpoints every 3 steps with num_iterations 2: some are
saved between a generation round and its reuse, so the generations still to be trained on travel in the checkpoint.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import torch
from safetensors.torch import load_file

from grpo_runs import grpo_cfg
from processes import assert_interrupted, train_process, wait_for
from tuneforge.utils.run_folder import complete_checkpoints

STEPS = 30


def _steps(out: Path) -> list[int]:
    log = out / "trainer_log.jsonl"
    if not log.is_file():
        return []
    return [json.loads(line)["step"] for line in log.read_text().splitlines() if line.strip().endswith("}")]


def _checkpoint_steps(out: Path) -> list[int]:
    return [int(path.name.split("-")[1]) for path in complete_checkpoints(out)]


def _finish(proc) -> str:
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return err


def test_grpo_sigterm_then_kill_9_then_the_same_command_matches_a_straight_run(tiny_model_dir, tmp_path):
    def cfg(out: Path) -> dict:
        return grpo_cfg(tiny_model_dir, out, max_steps=STEPS, save_steps=3, beta=0.04)  # beta: the KL term too

    straight = tmp_path / "straight"
    _finish(train_process(cfg(straight), tmp_path, "straight"))

    out = tmp_path / "run"
    first = train_process(cfg(out), tmp_path, "run")
    wait_for(lambda: len(_steps(out)) >= 2, first, timeout=300)
    first.send_signal(signal.SIGTERM)  # Abort: the step finishes, a checkpoint is saved, exit 130
    _, err = first.communicate(timeout=120)
    assert_interrupted(first, err)
    stopped = _checkpoint_steps(out)[-1]
    assert 2 <= stopped < STEPS and not (out / "adapter_model.safetensors").exists()

    second = train_process(cfg(out), tmp_path, "run")  # resumes, then dies hard after its next checkpoint
    wait_for(lambda: _checkpoint_steps(out)[-1] > stopped, second, timeout=300)
    second.kill()
    second.communicate(timeout=60)
    killed_after = _checkpoint_steps(out)[-1]
    assert killed_after < STEPS and not (out / "train_results.json").exists(), "the run ended before kill -9"

    err = _finish(train_process(cfg(out), tmp_path, "run"))  # the same command, unchanged
    assert "resuming from" in err
    final, expected = load_file(out / "adapter_model.safetensors"), load_file(straight / "adapter_model.safetensors")
    assert final.keys() == expected.keys() and all(torch.equal(final[k], expected[k]) for k in final)
    assert _steps(out) == list(range(1, STEPS + 1))

    def rows(folder: Path) -> list[dict]:
        return [json.loads(line) for line in (folder / "trainer_log.jsonl").read_text().splitlines()]

    assert [r.get("reward") for r in rows(out)] == [r.get("reward") for r in rows(straight)]
    assert [r.get("kl") for r in rows(out)] == [r.get("kl") for r in rows(straight)]
    assert any(r.get("kl") for r in rows(out))  # beta > 0: the KL to the base (adapter disabled) is logged
    completions = (out / "completions.jsonl").read_text(encoding="utf-8")
    assert completions == (straight / "completions.jsonl").read_text(encoding="utf-8")  # trimmed, none twice
