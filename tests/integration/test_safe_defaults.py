"""Safe defaults: weights only as safetensors, no unpickling of untrusted files, no remote code unless asked,
servers on 127.0.0.1, secrets never written to run folders or logs."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import torch

from tuneforge.config import load_config
from tuneforge.train.run import run_training

SRC = Path(__file__).resolve().parents[2] / "src" / "tuneforge"
SECRET = "hf_DoNotLeakThis1234567890"
# What HF Trainer writes with torch.save next to the safetensors weights: the run's own resume state, read back
# only by the trainer (optimizer / scheduler / RNG with weights_only=True) — never model weights, never shipped.
TRAINER_STATE_PICKLES = {"optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin"}


def test_a_run_folder_holds_safetensors_weights_and_no_secret(train_overrides, tmp_path, capsys):
    cfg = train_overrides("lora", max_steps=2, save_steps=2, hf_hub_token=SECRET, lora_dropout=0.1)
    out = run_training(load_config(None, cfg))
    logs = capsys.readouterr()

    weights = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.safetensors"))
    assert weights == ["adapter_model.safetensors", "checkpoint-2/adapter_model.safetensors"]
    pickles = [p for p in out.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".pickle")]
    assert {p.name for p in pickles} <= TRAINER_STATE_PICKLES, pickles
    from transformers.trainer_pt_utils import safe_globals

    for p in pickles:
        if p.name != "training_args.bin":  # the trainer reads these back on resume, exactly like this:
            with safe_globals():  # weights_only=True plus numpy's array type (the numpy RNG state)
                torch.load(p, weights_only=True)

    assert "hf_hub_token: '***'" in (out / "config.yaml").read_text()
    for path in out.rglob("*"):  # config, logs, trainer state, training_args.bin (a pickle): nowhere
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in logs.out + logs.err


def test_secrets_are_masked_in_saved_configs():
    cfg = load_config(None, {"model_name_or_path": "m", "hf_hub_token": SECRET, "dataset": "d"})
    assert cfg.to_dict()["hf_hub_token"] == "***" and SECRET not in cfg.to_yaml()
    assert cfg.to_dict(masked=False)["hf_hub_token"] == SECRET  # what the loader itself uses


def test_our_code_never_unpickles_untrusted_files():
    """Every torch.load passes weights_only=True; no pickle / dill / joblib loads; no hard-coded remote code."""
    offenders = []
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"torch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in match.group(1):
                offenders.append(f"{path}: {match.group(0)}")
        for pattern in (r"\bpickle\.loads?\(", r"\bdill\.", r"\bjoblib\.load", r"trust_remote_code\s*=\s*True"):
            offenders += [f"{path}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert offenders == []


def test_trust_remote_code_is_off_unless_set(tiny_model_dir):
    from tuneforge.model.loader import _hub_kwargs

    cfg = load_config(None, {"model_name_or_path": str(tiny_model_dir)})
    assert cfg.model.trust_remote_code is False and _hub_kwargs(cfg.model)["trust_remote_code"] is False
    cfg = load_config(None, {"model_name_or_path": str(tiny_model_dir), "trust_remote_code": True})
    assert _hub_kwargs(cfg.model)["trust_remote_code"] is True


def test_servers_bind_to_127_0_0_1_by_default():
    from tuneforge.api.server import serve
    from tuneforge.cli import build_parser
    from tuneforge.webui.app import launch

    parser = build_parser()
    for command in (["api", "cfg.yaml"], ["webui"], ["webchat"]):
        assert parser.parse_args(command).host == "127.0.0.1", command
    assert inspect.signature(launch).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    assert parser.parse_args(["webui"]).share is False
