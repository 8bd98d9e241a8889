"""LLaMA-Factory's activation-checkpointing switches: disable_gradient_checkpointing and use_reentrant_gc reach the
Trainer's arguments, and a run with them trains."""

from __future__ import annotations

import json

import pytest

from tuneforge.cli import main
from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.train.arguments import build_training_arguments
from tuneforge.utils import run_folder


def checkpointing(args) -> tuple[bool, dict | None]:
    """(on, kwargs) under whichever names this transformers reads."""
    on = getattr(args, "activation_checkpointing", None)
    if on is None:
        return bool(args.gradient_checkpointing), args.gradient_checkpointing_kwargs
    return bool(on), args.activation_checkpointing_kwargs


def test_disable_gradient_checkpointing_turns_it_off(tiny_model_dir, tmp_path):
    base = [f"model_name_or_path={tiny_model_dir}"]
    on = build_training_arguments(load_config(None, [*base, "gradient_checkpointing=true"]), str(tmp_path))
    assert checkpointing(on)[0] is True
    off = build_training_arguments(load_config(None, [*base, "disable_gradient_checkpointing=true"]), str(tmp_path))
    assert checkpointing(off)[0] is False
    both = load_config(None, [*base, "gradient_checkpointing=true", "disable_gradient_checkpointing=true"])
    with pytest.raises(UserError, match="contradict"):
        build_training_arguments(both, str(tmp_path))


@pytest.mark.parametrize("reentrant", [True, False])
def test_use_reentrant_gc_reaches_the_trainer_and_trains(train_overrides, tmp_path, reentrant):
    cfg = train_overrides("lora", max_steps=2, gradient_checkpointing=True, use_reentrant_gc=reentrant)
    args = build_training_arguments(load_config(None, [f"{k}={v}" for k, v in cfg.items()]), str(tmp_path / "a"))
    assert checkpointing(args) == (True, {"use_reentrant": reentrant})
    overrides = [f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in cfg.items()]
    assert main(["train", *overrides]) == 0
    losses = [r["loss"] for r in run_folder.read_records(tmp_path / "out-lora") if "loss" in r]
    assert len(losses) == 2 and all(0 < loss < 20 for loss in losses)
