"""FSDP / FSDP2: accelerate runs FSDP only on accelerators. On a CPU it ignores the FSDP settings and trains plain
DDP (seen here: 2 gloo processes with `fsdp: full_shard auto_wrap` log DDP's reducer and shard nothing), so
TuneForge refuses FSDP without CUDA, and FSDP with a single process, with one line each. The accelerate configs
in examples/accelerate/ are what `accelerate launch --config_file ... -m tuneforge train cfg.yaml` reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuneforge.config import load_config
from tuneforge.errors import UserError

ACCELERATE = Path(__file__).resolve().parents[2] / "examples" / "accelerate"


def base(tiny_model_dir, data_dir, **extra) -> dict:
    return {"model_name_or_path": str(tiny_model_dir), "dataset": "toy", "dataset_dir": str(data_dir), **extra}


def cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@pytest.mark.skipif(cuda_count() > 0, reason="the CPU refusal is checked on machines without CUDA")
def test_fsdp_on_cpu_is_refused_with_the_reason(tiny_model_dir, data_dir, monkeypatch):
    with pytest.raises(UserError) as err:
        load_config(None, base(tiny_model_dir, data_dir, fsdp="full_shard auto_wrap"))
    assert err.value.where == "fsdp"
    assert "FSDP needs CUDA GPUs" in err.value.message and "plain DDP" in err.value.message
    assert "ds_z3_config.json" in err.value.fix  # the way to shard on a CPU
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")  # what `accelerate launch` with an FSDP config sets
    with pytest.raises(UserError, match="FSDP needs CUDA GPUs") as err:
        load_config(None, base(tiny_model_dir, data_dir))
    assert err.value.where == "ACCELERATE_USE_FSDP"


@pytest.mark.skipif(cuda_count() > 0, reason="the CPU refusal is checked on machines without CUDA")
def test_cli_refuses_fsdp_on_cpu_before_starting_processes(tiny_model_dir, data_dir, tmp_path):
    cfg = tmp_path / "fsdp.yaml"
    settings = base(tiny_model_dir, data_dir, fsdp="full_shard auto_wrap", output_dir=str(tmp_path / "out"))
    cfg.write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in settings.items()) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "WORLD_SIZE", "RANK")}
    proc = subprocess.run(
        [sys.executable, "-m", "tuneforge", "train", "--nproc", "2", str(cfg)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2
    assert f"{cfg}:4 (fsdp): FSDP needs CUDA GPUs" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_fsdp_in_one_process_is_refused(monkeypatch):
    from tuneforge.train.engines import prepare_engines

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(UserError, match="this run has one"):
        prepare_engines({"fsdp": "full_shard auto_wrap"})
    monkeypatch.setenv("WORLD_SIZE", "2")
    prepare_engines({"fsdp": "full_shard auto_wrap"})  # several processes: left to accelerate


@pytest.mark.parametrize(("name", "version"), [("fsdp_config.yaml", 1), ("fsdp2_config.yaml", 2)])
def test_accelerate_configs_parse(name, version):
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType

    config = load_config_from_file(str(ACCELERATE / name))
    assert config.distributed_type == DistributedType.FSDP
    assert config.fsdp_config["fsdp_version"] == version
    assert config.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert config.num_processes == 2 and not config.use_cpu


@pytest.mark.gpu
@pytest.mark.skipif(cuda_count() < 2, reason="FSDP shards across processes: needs 2 CUDA GPUs")
def test_fsdp2_trains_on_two_gpus(train_overrides, tmp_path, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "fsdp2"
    cfg = train_overrides("full", output_dir=str(out), max_steps=8, per_device_train_batch_size=2)
    cfg.update(fsdp="full_shard auto_wrap", fsdp_config=json.dumps({"version": 2}))
    args = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in cfg.items()]
    proc = subprocess.run(
        [sys.executable, "-m", "tuneforge", "train", "--nproc", "2", *args], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    losses = {r["step"]: r["loss"] for r in rows if r.get("loss") is not None}
    assert losses[8] < 0.6 * losses[1]
    assert "reducer" not in proc.stderr  # sharded by FSDP, not DDP's reducer
    AutoModelForCausalLM.from_pretrained(out)
