"""Continued pre-training: plain text packed into cutoff_len blocks, no attention across documents."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

# transformers at the top: train/run.py imports a stage's recipe only when that stage runs.
from transformers import Trainer

from tuneforge.data.pretrain import PackedCollator
from tuneforge.train.arguments import build_training_arguments
from tuneforge.train.common import load_stage_inputs, train_stage

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.train.output_dir import OutputPlan


def run(cfg: RunConfig, plan: OutputPlan) -> Path:
    inputs = load_stage_inputs(cfg, "pt")
    # packed blocks carry no attention_mask, so count every token as seen
    args = build_training_arguments(cfg, str(plan.path), include_num_input_tokens_seen="all")
    return train_stage(Trainer, cfg, plan, inputs, args, data_collator=PackedCollator())
