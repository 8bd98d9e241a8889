"""`tuneforge train` collects nothing while it starts (utils/startup_gc.py) and every training step runs with the
collector on again and start-up's objects frozen, in every stage's recipe (they all train through train/common.py)."""

from __future__ import annotations

import gc
import json

import pytest
from transformers import Trainer

from tuneforge.config import load_config
from tuneforge.train.run import run_training
from tuneforge.utils import startup_gc


@pytest.fixture
def collector_seen_by_steps(monkeypatch):
    seen = []
    step = Trainer.training_step

    def spy(self, *args, **kwargs):
        seen.append((gc.isenabled(), gc.get_freeze_count()))
        return step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "training_step", spy)
    yield seen
    startup_gc.settle()
    gc.enable()
    gc.unfreeze()


def test_steps_run_with_collection_on_and_start_up_frozen(train_overrides, collector_seen_by_steps):
    startup_gc.defer()  # as tuneforge.__main__ does for a train command
    out = run_training(load_config(None, train_overrides("lora", max_steps=3)))
    assert len(collector_seen_by_steps) == 3
    assert all(enabled and frozen > 0 for enabled, frozen in collector_seen_by_steps), collector_seen_by_steps
    losses = [json.loads(line).get("loss") for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    assert len([loss for loss in losses if loss is not None]) == 3


def test_a_run_nobody_deferred_freezes_nothing(train_overrides, collector_seen_by_steps):
    frozen = gc.get_freeze_count()
    run_training(load_config(None, train_overrides("lora", max_steps=2)))
    assert collector_seen_by_steps == [(True, frozen)] * 2
