"""GRPO with every method and reward source: full and freeze (the reference is our own copy of the base, loaded as
the policy was), a reward model from an rm run (a separate model, or its LoRA adapter on the policy's base), and an
evaluation set (rewards on held-out prompts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grpo_runs import ROOT, grpo_cfg
from tuneforge.config import load_config
from tuneforge.train.run import run_training


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]


def _short(tiny_model_dir, out: Path, **extra) -> dict:
    """4 steps, a fresh generation round each, reward: length."""
    return grpo_cfg(tiny_model_dir, out, max_steps=4, num_iterations=1, max_samples=32, **extra)


@pytest.mark.parametrize("method", ["full", "freeze"])
def test_full_and_freeze_with_a_reference_log_the_kl_from_zero(tiny_model_dir, tmp_path, method):
    out = tmp_path / method
    cfg = _short(tiny_model_dir, out, finetuning_type=method, beta=0.04, learning_rate=1e-3)
    del cfg["lora_rank"], cfg["lora_alpha"]
    run_training(load_config(None, cfg))
    kl = [row["kl"] for row in _log(out)]
    assert kl[0] == 0.0 and kl[-1] > 0.0, kl  # the policy starts as the reference, then moves away from it
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()


def test_lora_with_an_explicit_ref_model_logs_the_kl_to_it(tiny_model_dir, tmp_path):
    """ref_model given with LoRA: the KL is to that model (here the base itself: 0 before the first update)."""
    out = tmp_path / "ref"
    run_training(load_config(None, _short(tiny_model_dir, out, beta=0.04, ref_model=str(tiny_model_dir))))
    kl = [row["kl"] for row in _log(out)]
    assert kl[0] == 0.0 and kl[-1] > 0.0, kl
    assert not (out / "ref").exists() and (out / "adapter_model.safetensors").is_file()


@pytest.fixture(scope="module")
def rm_run(tiny_model_dir, tmp_path_factory) -> Path:
    """A (barely trained) LoRA reward model: GRPO only needs a score per completion."""
    out = tmp_path_factory.mktemp("rm") / "rm"
    cfg = {
        "model_name_or_path": str(tiny_model_dir),
        "stage": "rm",
        "dataset": "dpo_en_demo",
        "dataset_dir": str(ROOT / "data"),
        "template": "qwen",
        "cutoff_len": 64,
        "max_samples": 8,
        "max_steps": 1,
        "output_dir": str(out),
        "report_to": "none",
    }
    return run_training(load_config(None, cfg))


@pytest.mark.parametrize("kind", ["full", "lora"])
def test_reward_model_of_an_rm_run_is_one_more_reward(tiny_model_dir, rm_run, tmp_path, kind):
    out = tmp_path / kind
    cfg = _short(tiny_model_dir, out, reward_model=str(rm_run), reward_model_type=kind, reward_weights="1, 0.5")
    run_training(load_config(None, cfg))
    rows = [row for row in _log(out) if "reward" in row]
    assert all({"rewards/length/mean", "rewards/reward_model/mean"} <= row.keys() for row in rows)
    for row in rows:  # the logged total is the weighted sum of the two
        total = row["rewards/length/mean"] + 0.5 * row["rewards/reward_model/mean"]
        assert row["reward"] == pytest.approx(total, abs=1e-5)
    assert len({row["rewards/reward_model/mean"] for row in rows}) > 1  # a real score, not a constant
    sample = json.loads((out / "completions.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert set(sample["rewards"]) == {"length", "reward_model"}


def test_eval_set_is_rewarded_too(tiny_model_dir, tmp_path):
    out = tmp_path / "eval"
    cfg = _short(tiny_model_dir, out, val_size=8, eval_steps=2, per_device_eval_batch_size=8)
    run_training(load_config(None, cfg))
    evals = [row for row in _log(out) if row.get("eval_loss") is not None]
    assert sorted({row["step"] for row in evals}) == [2, 4]  # every eval_steps, and once more at the end
    assert all("eval_reward" in row and "eval_rewards/length/mean" in row for row in evals)


@pytest.mark.slow
def test_two_processes_share_the_groups_and_keep_each_ones_generations(tiny_model_dir, tmp_path):
    """torchrun, DDP over gloo: 2 processes x 4 completions make the step's 2 groups; rank 0 writes the logs with
    everyone's completions; each process's pending generations go into the checkpoint (num_iterations 2)."""
    out = tmp_path / "ddp"
    cfg = grpo_cfg(tiny_model_dir, out, max_steps=4, save_steps=3, per_device_train_batch_size=4, max_samples=32)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("LOCAL_RANK", None)
    args = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in cfg.items()]
    proc = subprocess.run(
        [sys.executable, "-m", "tuneforge", "train", "--nproc", "2", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [row["step"] for row in _log(out)] == [1, 2, 3, 4]  # one line per step: rank 0 only
    completions = [json.loads(line) for line in (out / "completions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["step"] for row in completions] == [1] * 8 + [3] * 8  # both processes' completions, gathered
    assert {p.name for p in (out / "checkpoint-3").glob("grpo_generations_*.pt")} == {
        "grpo_generations_0.pt",
        "grpo_generations_1.pt",
    }
    assert (out / "adapter_model.safetensors").is_file()


def test_the_shipped_example_runs_on_the_tiny_model(tiny_model_dir, tmp_path):
    """examples/train/qwen_lora_grpo.yaml as shipped (qwen3 template, accuracy + format on math_demo), with only
    the model, the data folder and the size of the run swapped for tiny ones."""
    overrides = {
        "model_name_or_path": str(tiny_model_dir),
        "dataset_dir": str(ROOT / "data"),
        "output_dir": str(tmp_path / "example"),
        "max_steps": 2,
        "max_completion_length": 8,
        "num_generations": 4,
        "gradient_accumulation_steps": 1,
        "report_to": "none",
    }
    out = run_training(load_config(str(ROOT / "examples" / "train" / "qwen_lora_grpo.yaml"), overrides))
    rows = [row for row in _log(out) if "reward" in row]
    assert {"rewards/accuracy/mean", "rewards/format/mean"} <= rows[0].keys()
    assert (out / "adapter_model.safetensors").is_file()
