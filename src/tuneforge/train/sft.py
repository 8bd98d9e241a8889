"""Supervised fine-tuning: templated conversations, loss on the responses, HF Trainer underneath."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from tuneforge.train.output_dir import CONFIG_FILE
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.train.output_dir import OutputPlan

logger = get_logger(__name__)


def load_for_training(cfg: RunConfig):
    """Tokenizer, template, datasets and the trainable model: everything that can fail on bad input."""
    from tuneforge.data.loader import get_sft_datasets
    from tuneforge.data.template import get_template
    from tuneforge.model.adapters import prepare_trainable, split_names
    from tuneforge.model.loader import load_model, load_tokenizer
    from tuneforge.train.arguments import compute_dtype

    tokenizer = load_tokenizer(cfg.model)
    template = get_template(cfg.data.template, tokenizer)
    template.fix_tokenizer(tokenizer)
    seed = int(cfg.training.get("seed", 42))
    train_set, eval_set = get_sft_datasets(cfg.data, template, tokenizer, seed=seed)
    from transformers import set_seed

    set_seed(seed)  # adapter initialisation is random too: same seed, same run
    model = load_model(cfg.model, compute_dtype(cfg), cfg.data.cutoff_len)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    model = prepare_trainable(model, cfg.finetuning, split_names(cfg.model.adapter_name_or_path))
    return tokenizer, template, train_set, eval_set, model


def run(cfg: RunConfig, plan: OutputPlan) -> Path:
    from transformers import DataCollatorForSeq2Seq, Trainer

    from tuneforge.data.sft import IGNORE_INDEX
    from tuneforge.train.arguments import build_training_arguments
    from tuneforge.train.callbacks import JsonlLogCallback
    from tuneforge.train.plot import plot_loss

    tokenizer, template, train_set, eval_set, model = load_for_training(cfg)
    args = build_training_arguments(cfg, str(plan.path))
    if args.gradient_checkpointing and cfg.finetuning.finetuning_type == "lora":
        model.enable_input_require_grads()
    plan.prepare()
    _write_config(cfg, plan.path)

    collator = DataCollatorForSeq2Seq(
        tokenizer, label_pad_token_id=IGNORE_INDEX, pad_to_multiple_of=8 if not args.use_cpu else None
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[JsonlLogCallback(plan.path)],
    )
    if plan.resume_from:
        logger.info("resuming from %s", plan.resume_from)
    result = trainer.train(resume_from_checkpoint=plan.resume_from)
    tokenizer.chat_template = template.to_jinja()  # plain transformers then renders what training saw
    trainer.save_model()
    trainer.save_state()
    if eval_set is not None:
        trainer.save_metrics("eval", trainer.evaluate())
    trainer.save_metrics("train", result.metrics)  # train_results.json marks the run complete
    if cfg.finetuning.plot_loss and trainer.is_world_process_zero():
        plot_loss(plan.path)
    logger.info("saved to %s", plan.path)
    return plan.path


def _write_config(cfg: RunConfig, path: Path) -> None:
    from tuneforge.utils.logging import is_main_process

    if not is_main_process():
        return
    data = cfg.to_dict()
    data.setdefault("output_dir", str(path))
    (path / CONFIG_FILE).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
