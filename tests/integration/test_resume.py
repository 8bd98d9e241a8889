"""An interrupted run, resumed, ends with the same loss curve and weights as one that ran straight through."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from tuneforge.config import load_config
from tuneforge.train import callbacks
from tuneforge.train.run import run_training


def curve(out) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if r.get("loss") is not None]


def test_resume_matches_uninterrupted(train_overrides, tmp_path, monkeypatch):
    common = {"max_steps": 8, "save_steps": 4, "lora_dropout": 0.1}  # dropout: RNG state must be restored too
    straight = run_training(load_config(None, train_overrides("lora", output_dir=str(tmp_path / "a"), **common)))

    original = callbacks.JsonlLogCallback.on_step_end

    def crash_after_step_6(self, args, state, control, **kwargs):
        if state.global_step == 6:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C after checkpoint-4
        return original(self, args, state, control, **kwargs)

    resumed_cfg = train_overrides("lora", output_dir=str(tmp_path / "b"), **common)
    monkeypatch.setattr(callbacks.JsonlLogCallback, "on_step_end", crash_after_step_6, raising=False)
    with pytest.raises(KeyboardInterrupt):
        run_training(load_config(None, resumed_cfg))
    monkeypatch.undo()
    assert (tmp_path / "b" / "checkpoint-4").is_dir() and not (tmp_path / "b" / "train_results.json").exists()

    resumed = run_training(load_config(None, resumed_cfg))  # same command again: picks up checkpoint-4
    assert [s for s, _ in curve(resumed)] == [s for s, _ in curve(straight)] == list(range(1, 9))
    assert [v for _, v in curve(resumed)] == pytest.approx([v for _, v in curve(straight)], rel=1e-5)
    a = load_file(straight / "adapter_model.safetensors")
    b = load_file(resumed / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max().item() < 1e-6, key


def test_explicit_resume_from_checkpoint(train_overrides, tmp_path):
    cfg = train_overrides("lora", output_dir=str(tmp_path / "c"), max_steps=4, save_steps=2)
    out = run_training(load_config(None, cfg))
    cfg2 = {**cfg, "output_dir": str(tmp_path / "d"), "resume_from_checkpoint": str(out / "checkpoint-2")}
    resumed = run_training(load_config(None, cfg2))
    assert [s for s, _ in curve(resumed)] == [3, 4]
