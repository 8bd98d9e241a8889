"""Ray workers (LF's ray_num_workers / USE_RAY=1) train like torchrun processes: the same DDP over gloo, started by
Ray actors instead of torchrun. Same config, same global batch: the same loss curve and the same adapter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from ray.util import get_node_ip_address
from safetensors.torch import load_file

from tuneforge.train.launch import free_port
from tuneforge.utils.run_folder import read_records

RAY_PROCESS_WAIT_S = 20


def curve(out) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_records(out) if r.get("loss") is not None}


def as_args(cfg: dict) -> list[str]:
    return [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in cfg.items()]


def train(args: list[str], env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "tuneforge", "train", *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in line:
            found.append(line)
    return found


@pytest.mark.slow
def test_two_ray_workers_match_two_torchrun_processes_and_leave_nothing_running(train_overrides, tmp_path):
    common = {"max_steps": 5, "cutoff_len": 48, "per_device_train_batch_size": 2}  # global batch 4 in both runs
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled"}
    for key in ("LOCAL_RANK", "WORLD_SIZE", "RANK", "USE_RAY", "RAY_ADDRESS", "NPROC_PER_NODE"):
        env.pop(key, None)
    torchrun_out = tmp_path / "torchrun"
    train(["--nproc", "2", *as_args(train_overrides("lora", output_dir=str(torchrun_out), **common))], env)

    # a short folder of our own for Ray's sockets (a unix socket path must stay under 108 bytes), searched below
    ray_dir = tempfile.mkdtemp(prefix="tfray", dir="/tmp")
    init = {"num_cpus": 2, "include_dashboard": False, "_temp_dir": ray_dir}
    master = {"master_addr": get_node_ip_address(), "master_port": free_port()}  # this node: Ray's only one
    ray_out = tmp_path / "ray"
    ray_cfg = train_overrides(
        "lora", output_dir=str(ray_out), ray_num_workers=2, ray_init_kwargs=json.dumps(init), **master, **common
    )
    try:
        proc = train(as_args(ray_cfg), env)
        assert list(Path(ray_dir).glob("session_*")), "ray.init did not get ray_init_kwargs' _temp_dir"
        deadline = time.monotonic() + RAY_PROCESS_WAIT_S
        while processes_mentioning(ray_dir) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not processes_mentioning(ray_dir), processes_mentioning(ray_dir)  # ray.shutdown() ended them all
    finally:
        shutil.rmtree(ray_dir, ignore_errors=True)
    started = f"training on 2 Ray worker(s) ({{'CPU': 1}} each), master {master['master_addr']}:{master['master_port']}"
    assert started in proc.stderr, proc.stderr[-3000:]

    ray_curve, torchrun_curve = curve(ray_out), curve(torchrun_out)
    print("\nper-step loss, ray:", ray_curve, "\nper-step loss, torchrun:", torchrun_curve)
    assert sorted(ray_curve) == sorted(torchrun_curve) == list(range(1, 6))
    for step in torchrun_curve:
        assert ray_curve[step] == pytest.approx(torchrun_curve[step], rel=0.03), (step, ray_curve, torchrun_curve)
    assert len((ray_out / "trainer_log.jsonl").read_text().splitlines()) == 5  # rank 0 alone wrote the log

    # the output loads, and it is the adapter torchrun trained
    ray_weights = load_file(ray_out / "adapter_model.safetensors")
    torchrun_weights = load_file(torchrun_out / "adapter_model.safetensors")
    assert ray_weights.keys() == torchrun_weights.keys() and ray_weights
    for name, value in ray_weights.items():
        assert torch.allclose(value, torchrun_weights[name], atol=1e-4), name
    from peft import AutoPeftModelForCausalLM  # the saved folder is a loadable PEFT model

    model = AutoPeftModelForCausalLM.from_pretrained(str(ray_out))
    logits = model(torch.tensor([[1, 2, 3]])).logits
    assert torch.isfinite(logits).all()
