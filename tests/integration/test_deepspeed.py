"""DeepSpeed ZeRO through `deepspeed: path.json`: config errors are one line before any process starts; ZeRO-2 and
ZeRO-3 train on 2 CPU processes (gloo) like plain training, and what they save loads in plain transformers / peft.

The slow tests need the deepspeed package (the Makefile installs it). The first DeepSpeed run on a machine
JIT-compiles a communication op (70-105 s on 2 cores); later runs reuse the torch extensions cache.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grpo_runs import grpo_cfg
from tuneforge.config import load_config
from tuneforge.errors import UserError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "deepspeed"
SHIPPED = ["ds_z2_config.json", "ds_z2_offload_config.json", "ds_z3_config.json", "ds_z3_offload_config.json"]
HAS_DEEPSPEED = importlib.util.find_spec("deepspeed") is not None
needs_deepspeed = pytest.mark.skipif(not HAS_DEEPSPEED, reason="deepspeed not installed (make test installs it)")


def base(tiny_model_dir, data_dir, **extra) -> dict:
    return {"model_name_or_path": str(tiny_model_dir), "dataset": "toy", "dataset_dir": str(data_dir), **extra}


def curve(out: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if r.get("loss") is not None}


def as_args(cfg: dict) -> list[str]:
    return [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in cfg.items()]


def tuneforge_train(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "tuneforge", "train", *args], capture_output=True, text=True, env=env, timeout=900
    )


@needs_deepspeed
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_load(name, tiny_model_dir, data_dir):
    from tuneforge.config.engines import load_deepspeed_config

    data = load_deepspeed_config(str(EXAMPLES / name), "deepspeed")
    assert data["zero_optimization"]["stage"] == (2 if "z2" in name else 3)
    assert ("offload_optimizer" in data["zero_optimization"]) == ("offload" in name)
    cfg = load_config(None, base(tiny_model_dir, data_dir, deepspeed=str(EXAMPLES / name)))
    assert cfg.training["deepspeed"] == str(EXAMPLES / name)  # HF reads the file itself


@needs_deepspeed
def test_bad_deepspeed_configs_are_one_line_errors(tiny_model_dir, data_dir, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "zero_optimization": {"stage": 2},\n  "bf16": {"enabled": "auto"},\n}\n')
    with pytest.raises(UserError) as err:
        load_config(None, base(tiny_model_dir, data_dir, deepspeed=str(broken)))
    assert err.value.where == f"{broken}:4"
    with pytest.raises(UserError, match="DeepSpeed config file not found"):
        load_config(None, base(tiny_model_dir, data_dir, deepspeed=str(tmp_path / "missing.json")))
    stage9 = tmp_path / "stage9.json"
    stage9.write_text('{"zero_optimization": {"stage": 9}}')
    with pytest.raises(UserError, match="zero_optimization.stage must be one of"):
        load_config(None, base(tiny_model_dir, data_dir, deepspeed=str(stage9)))
    with pytest.raises(UserError, match="cannot be used together"):
        load_config(None, base(tiny_model_dir, data_dir, deepspeed=str(EXAMPLES / SHIPPED[0]), fsdp="full_shard"))


def test_missing_deepspeed_package_says_how_to_install(tiny_model_dir, data_dir, monkeypatch):
    import tuneforge.config.engines as engines

    real = importlib.util.find_spec
    monkeypatch.setattr(engines.importlib.util, "find_spec", lambda n, *a: None if n == "deepspeed" else real(n, *a))
    with pytest.raises(UserError, match="no-build-isolation deepspeed"):
        load_config(None, base(tiny_model_dir, data_dir, deepspeed=str(EXAMPLES / SHIPPED[0])))


def run_two_processes(train_overrides, tmp_path, name: str, method: str, config: str, **extra) -> Path:
    cfg = train_overrides(
        method,
        output_dir=str(tmp_path / name),
        per_device_train_batch_size=2,
        max_steps=8,
        save_steps=4,
        cutoff_len=48,
        deepspeed=str(EXAMPLES / config),
        **extra,
    )
    proc = tuneforge_train("--nproc", "2", *as_args(cfg))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return tmp_path / name


def plain_run(train_overrides, tmp_path, method: str) -> dict[int, float]:
    """The same global batch (2 processes × 2 = 4) in one process without DeepSpeed."""
    from tuneforge.train.run import run_training

    cfg = train_overrides(
        method, output_dir=str(tmp_path / "plain"), per_device_train_batch_size=4, max_steps=8, cutoff_len=48
    )
    return curve(run_training(load_config(None, cfg)))


@pytest.mark.slow
@needs_deepspeed
def test_zero2_lora_two_cpu_processes_and_resume(train_overrides, tmp_path, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = run_two_processes(train_overrides, tmp_path, "z2", "lora", "ds_z2_config.json")
    losses = curve(out)
    assert sorted(losses) == list(range(1, 9))  # one log line per step: only rank 0 logs
    assert losses[8] < 0.6 * losses[1]
    reference = plain_run(train_overrides, tmp_path, "lora")
    for step, loss in reference.items():
        assert losses[step] == pytest.approx(loss, rel=0.03), (step, losses, reference)
    shards = sorted(p.name for p in (out / "checkpoint-4" / "global_step4").iterdir())
    assert "zero_pp_rank_1_mp_rank_00_optim_states.pt" in shards  # each rank saved its optimizer partition
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), out)
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # trained, not the zero init

    # a DeepSpeed checkpoint (every rank's partition) resumes: steps 5-8 repeat the uninterrupted run
    resumed = run_two_processes(
        train_overrides,
        tmp_path,
        "z2-resumed",
        "lora",
        "ds_z2_config.json",
        resume_from_checkpoint=str(out / "checkpoint-4"),
    )
    again = curve(resumed)
    assert sorted(again) == [5, 6, 7, 8]
    for step in again:
        assert again[step] == pytest.approx(losses[step], rel=0.01), (step, again, losses)


@pytest.mark.slow
@needs_deepspeed
def test_zero3_full_two_cpu_processes_saves_gathered_weights(train_overrides, tmp_path, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    out = run_two_processes(train_overrides, tmp_path, "z3", "full", "ds_z3_config.json")
    losses = curve(out)
    assert sorted(losses) == list(range(1, 9))
    assert losses[8] < 0.6 * losses[1]
    reference = plain_run(train_overrides, tmp_path, "full")
    for step, loss in reference.items():
        assert losses[step] == pytest.approx(loss, rel=0.03), (step, losses, reference)
    params = sorted(p.name for p in (out / "checkpoint-4" / "global_step4").iterdir())
    assert "zero_pp_rank_1_mp_rank_00_model_states.pt" in params  # ZeRO-3 partitions the weights too
    base_model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trained = AutoModelForCausalLM.from_pretrained(out)  # stage3_gather_16bit_weights_on_model_save
    before, after = base_model.state_dict(), trained.state_dict()
    assert before.keys() == after.keys()
    assert all(before[k].shape == after[k].shape for k in before)  # whole tensors, not empty ZeRO-3 shards
    assert sum(not torch.equal(before[k], after[k]) for k in before) > len(before) // 2


@pytest.mark.gpu
@needs_deepspeed
def test_zero3_lora_on_cuda(train_overrides, tmp_path, tiny_model_dir):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    nproc = str(min(2, torch.cuda.device_count()))
    cfg = train_overrides(
        "lora", output_dir=str(tmp_path / "gpu"), max_steps=8, deepspeed=str(EXAMPLES / "ds_z3_config.json")
    )
    proc = tuneforge_train("--nproc", nproc, *as_args(cfg))
    assert proc.returncode == 0, proc.stderr[-4000:]
    losses = curve(tmp_path / "gpu")
    assert losses[8] < 0.6 * losses[1]
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tmp_path / "gpu")


@pytest.mark.slow
@needs_deepspeed
def test_zero3_grpo_two_cpu_processes_generates_from_sharded_weights(tmp_path, tiny_model_dir):
    """GRPO under ZeRO-3: each process samples its completions from the partitioned policy (TRL gathers the
    weights for generation), the groups are shared across the two, and the LoRA adapter comes out whole."""
    out = tmp_path / "grpo-z3"
    cfg = grpo_cfg(tiny_model_dir, out, max_steps=2, per_device_train_batch_size=4, max_samples=16)
    cfg["deepspeed"] = str(EXAMPLES / "ds_z3_config.json")
    proc = tuneforge_train("--nproc", "2", *as_args(cfg))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2] and "rewards/length/mean" in rows[0]
    completions = (out / "completions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(completions) == 8  # one round (num_iterations 2) of 2 processes x 4 completions

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), out)
    assert all(p.numel() > 0 for name, p in model.named_parameters() if "lora_" in name)
