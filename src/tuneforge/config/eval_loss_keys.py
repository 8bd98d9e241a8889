"""Checks of eval_on_each_dataset and ignore_pad_token_for_loss (LLaMA-Factory's data keys): each acts where LF's
does, and a run where it could not act stops at config load in one line instead of ignoring it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.run_config import RunConfig


def check_eval_and_pad_keys(cfg: RunConfig) -> None:
    _check_eval_on_each_dataset(cfg)
    stage = cfg.finetuning.stage
    if not cfg.data.ignore_pad_token_for_loss and stage != "sft":
        raise UserError(
            f"ignore_pad_token_for_loss: false labels the padding of SFT batches; stage {stage}'s trainer masks"
            " padding itself (TRL's preference trainers by the attention mask)",
            where=cfg.where("ignore_pad_token_for_loss"),
            fix="remove ignore_pad_token_for_loss, or use it with stage: sft",
        )


def _check_eval_on_each_dataset(cfg: RunConfig) -> None:
    """With several evaluation sets the Trainer logs eval_<name>_loss for each and no eval_loss: a metric to compare
    (early stopping, the best checkpoint) must then name one of them."""
    data, training = cfg.data, cfg.training
    if not data.eval_on_each_dataset:
        return
    if not data.eval_dataset:
        raise UserError(
            "eval_on_each_dataset evaluates each dataset of eval_dataset on its own; this run has no eval_dataset",
            where=cfg.where("eval_on_each_dataset"),
            fix="set eval_dataset: name1,name2, or remove eval_on_each_dataset (val_size makes one set)",
        )
    compares = cfg.finetuning.early_stopping_steps is not None or training.get("load_best_model_at_end")
    if compares and not training.get("metric_for_best_model"):
        first = data.eval_dataset.split(",")[0].strip()
        raise UserError(
            "with eval_on_each_dataset each set logs its own eval_<name>_loss and there is no eval_loss to compare",
            where=cfg.where("eval_on_each_dataset"),
            fix=f"set metric_for_best_model: eval_{first}_loss (or another set's), or remove eval_on_each_dataset",
        )
