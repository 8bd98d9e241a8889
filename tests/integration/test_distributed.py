"""Two processes under torchrun (DDP over gloo on the CPU) train like one process with twice the batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tuneforge.config import load_config
from tuneforge.train.run import run_training


def curve(out) -> dict[int, float]:
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if r.get("loss") is not None}


def as_args(cfg: dict) -> list[str]:
    return [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in cfg.items()]


@pytest.mark.slow
def test_two_processes_match_one_with_double_batch_and_resume_in_one(train_overrides, tmp_path):
    common = {"max_steps": 6, "save_steps": 3, "cutoff_len": 48}
    single = run_training(
        load_config(
            None, train_overrides("lora", output_dir=str(tmp_path / "one"), per_device_train_batch_size=4, **common)
        )
    )
    ddp_cfg = train_overrides("lora", output_dir=str(tmp_path / "two"), per_device_train_batch_size=2, **common)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run(
        [sys.executable, "-m", "tuneforge", "train", "--nproc", "2", *as_args(ddp_cfg)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = tmp_path / "two"
    one_curve, two_curve = curve(single), curve(two)
    assert sorted(two_curve) == sorted(one_curve) == list(range(1, 7))
    for step in one_curve:
        assert two_curve[step] == pytest.approx(one_curve[step], rel=0.03), (step, one_curve, two_curve)
    # only rank 0 wrote the log: one line per step, no duplicates
    assert len((two / "trainer_log.jsonl").read_text().splitlines()) == 6
    assert (two / "checkpoint-3" / "rng_state_1.pth").is_file()  # both ranks' RNG states were kept

    resumed_cfg = {
        **ddp_cfg,
        "output_dir": str(tmp_path / "resumed"),
        "per_device_train_batch_size": 4,
        "resume_from_checkpoint": str(two / "checkpoint-3"),
    }
    resumed = run_training(load_config(None, resumed_cfg))
    resumed_curve = curve(resumed)
    assert sorted(resumed_curve) == [4, 5, 6]
    for step in resumed_curve:
        assert resumed_curve[step] == pytest.approx(two_curve[step], rel=0.03)
