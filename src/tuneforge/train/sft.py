"""Supervised fine-tuning: templated conversations, loss on the responses, HF Trainer underneath."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

# transformers at the top: train/run.py imports a stage's recipe only when that stage runs.
from transformers import Trainer

from tuneforge.data.collate import needs_whole_logits, sft_collator, supports_trained_logits
from tuneforge.data.loader import get_sft_datasets
from tuneforge.data.packing import pack_sft_sets
from tuneforge.evaluate.accuracy import accuracy_kwargs
from tuneforge.train.arguments import build_training_arguments
from tuneforge.train.common import StageInputs, load_tokenizer_and_template, load_trainable_model, seed_of, train_stage
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.train.output_dir import OutputPlan

logger = get_logger(__name__)


def load_for_training(cfg: RunConfig):
    """Tokenizer, template, datasets and the trainable model: everything that can fail on bad input."""
    tokenizer, template = load_tokenizer_and_template(cfg)
    train_set, eval_set = get_sft_datasets(cfg.data, template, tokenizer, seed=seed_of(cfg))
    train_set, eval_set = pack_sft_sets(cfg.data, train_set, eval_set)  # packing / neat_packing
    model = load_trainable_model(cfg, tokenizer)  # seeded: adapter initialisation is random too
    return tokenizer, template, train_set, eval_set, model


def run(cfg: RunConfig, plan: OutputPlan) -> Path:
    inputs = StageInputs(*load_for_training(cfg))
    model = inputs.model
    args = build_training_arguments(cfg, str(plan.path))
    slim = supports_trained_logits(model) and not needs_whole_logits(cfg)  # logits only at trained positions
    attn = model.config._attn_implementation
    collator = sft_collator(inputs.tokenizer, cfg.data, attn, args.use_cpu, trained_logits_only=slim)
    # + what every stage's trainer gets: JSONL log, StopOnSignal (Abort saves a checkpoint), the method's callbacks,
    # LoRA+ / GaLore optimizers; compute_accuracy: eval_accuracy from argmax tokens (tuneforge.evaluate.accuracy)
    return train_stage(Trainer, cfg, plan, inputs, args, data_collator=collator, **accuracy_kwargs(cfg))
