"""Continued pre-training: plain text packed into cutoff_len blocks, no attention across documents."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.train.output_dir import OutputPlan


def run(cfg: RunConfig, plan: OutputPlan) -> Path:
    from transformers import Trainer

    from tuneforge.data.loader import get_stage_datasets
    from tuneforge.data.pretrain import PackedCollator
    from tuneforge.train.arguments import build_training_arguments
    from tuneforge.train.common import (
        load_tokenizer_and_template,
        load_trainable_model,
        seed_of,
        train_and_save,
        trainer_extras,
    )

    tokenizer, template = load_tokenizer_and_template(cfg)
    train_set, eval_set = get_stage_datasets("pt", cfg.data, template, tokenizer, seed=seed_of(cfg))
    model = load_trainable_model(cfg, tokenizer)
    # packed blocks carry no attention_mask, so count every token as seen
    args = build_training_arguments(cfg, str(plan.path), include_num_input_tokens_seen="all")
    plan.prepare(cfg)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=PackedCollator(),
        processing_class=tokenizer,
        **trainer_extras(cfg, plan, model, args),
    )
    return train_and_save(trainer, cfg, plan, tokenizer, template, eval_set)
