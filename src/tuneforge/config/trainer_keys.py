"""Checks of the optimizer and trainer-callback keys (use_muon, use_adam_mini, early_stopping_steps,
include_effective_tokens_per_second, eval_num_beams): combinations that cannot work are one line at config load."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from tuneforge.config.stages import RECORDS, stage_record
from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.run_config import RunConfig

# keys that replace the Trainer's optimizer: at most one per run (GaLore / APOLLO / BAdam: validate._check_optimizers)
OWN_OPTIMIZER_KEYS = ("use_muon", "use_adam_mini", "use_galore", "use_apollo", "use_badam", "loraplus_lr_ratio")


def check_trainer_keys(cfg: RunConfig) -> None:
    _check_muon_and_adam_mini(cfg)
    _check_apollo_projection(cfg)
    _check_early_stopping(cfg)
    ft = cfg.finetuning
    own_loop = stage_record(ft.stage).own_loop
    if own_loop and cfg.training.get("report_to", "none") != "none":
        _refuse_for_own_loop(cfg, "report_to")  # trackers hang on the Trainer's callbacks; ppo: trainer_log.jsonl
    if ft.include_effective_tokens_per_second:
        if own_loop:
            _refuse_for_own_loop(cfg, "include_effective_tokens_per_second")
        if cfg.data.streaming:
            raise UserError(
                "include_effective_tokens_per_second counts the tokens of the whole training set; a stream has no end",
                where=cfg.where("include_effective_tokens_per_second"),
                fix="set streaming: false, or remove include_effective_tokens_per_second",
            )


def _refuse_for_own_loop(cfg: RunConfig, key: str) -> None:
    trainer_stages = ", ".join(record.name for record in RECORDS if not record.own_loop)
    raise UserError(
        f"{key} is for the Trainer-based stages ({trainer_stages}); stage {cfg.finetuning.stage} runs its own loop",
        where=cfg.where(key),
        fix=f"remove {key}, or choose another stage",
    )


def _check_muon_and_adam_mini(cfg: RunConfig) -> None:
    ft = cfg.finetuning
    for key in ("use_muon", "use_adam_mini"):
        if not getattr(ft, key):
            continue
        others = [k for k in OWN_OPTIMIZER_KEYS if k != key and getattr(ft, k) not in (None, False)]
        if others:
            raise UserError(
                f"{key} and {others[0]} cannot be combined: each brings its own optimizer",
                where=cfg.where(key),
                fix="choose one",
            )
        if stage_record(ft.stage).own_loop:
            _refuse_for_own_loop(cfg, key)
        if "optim" in cfg.given:
            raise UserError(
                f"optim: {cfg.given['optim']} and {key} both choose the optimizer",
                where=cfg.where("optim"),
                fix=f"remove optim, or remove {key}",
            )
    if ft.use_adam_mini and ft.finetuning_type == "lora":
        raise UserError(
            "Adam-mini splits whole q_proj / k_proj weights into attention heads; LoRA's low-rank matrices of those "
            "layers cannot be split so",
            where=cfg.where("use_adam_mini"),
            fix="set finetuning_type: full or freeze, or remove use_adam_mini",
        )
    if ft.use_adam_mini and importlib.util.find_spec("adam_mini") is None:
        raise UserError(
            "use_adam_mini needs the 'adam-mini' package, which is not installed",
            where=cfg.where("use_adam_mini"),
            fix="pip install adam-mini",
        )


def _check_apollo_projection(cfg: RunConfig) -> None:
    """apollo-torch's channel-wise scaling picks its axis from the matrix shape, as the std projection does; a fixed
    left / right projection then gives a scale of the wrong length for half the matrices (a shape error mid-step)."""
    ft = cfg.finetuning
    if ft.use_apollo and ft.apollo_proj_type != "std" and ft.apollo_scale_type == "channel":
        raise UserError(
            f"apollo_proj_type {ft.apollo_proj_type} works with apollo_scale_type tensor only (apollo-torch's "
            "channel scaling follows the std projection's side)",
            where=cfg.where("apollo_proj_type"),
            fix="set apollo_scale_type: tensor, or apollo_proj_type: std",
        )


def _check_early_stopping(cfg: RunConfig) -> None:
    """transformers' EarlyStoppingCallback needs evaluations and a metric to compare (we default it to eval loss)."""
    steps = cfg.finetuning.early_stopping_steps
    if steps is None:
        return
    where = cfg.where("early_stopping_steps")
    if stage_record(cfg.finetuning.stage).own_loop:
        _refuse_for_own_loop(cfg, "early_stopping_steps")
    if not (cfg.data.val_size > 0 or cfg.data.eval_dataset):
        raise UserError(
            "early_stopping_steps counts evaluations, and this run has no evaluation set",
            where=where,
            fix="set val_size (e.g. 0.1) or eval_dataset, or remove early_stopping_steps",
        )
    if str(cfg.training.get("eval_strategy", "steps")).lower().endswith("no"):
        raise UserError(
            "early_stopping_steps counts evaluations, and eval_strategy is no",
            where=cfg.where("eval_strategy"),
            fix="set eval_strategy: steps (with eval_steps) or epoch, or remove early_stopping_steps",
        )


def check_eval_num_beams(cfg: RunConfig) -> None:
    """`tuneforge train`: eval_num_beams acts on do_predict's generation only."""
    if cfg.data.eval_num_beams is not None and not cfg.training.get("do_predict"):
        raise UserError(
            "eval_num_beams sets the beams of do_predict's generation; this run does not predict",
            where=cfg.where("eval_num_beams"),
            fix="set do_predict: true and predict_with_generate: true, or remove eval_num_beams (or use num_beams)",
        )
