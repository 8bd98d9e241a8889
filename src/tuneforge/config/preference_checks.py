"""Rules for LLaMA-Factory's extra preference / RL keys: the reward model's kind and the DPO loss additions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.run_config import RunConfig

REFERENCE_FREE_LOSSES = ("orpo", "simpo")


def check_reward_model(cfg: RunConfig) -> None:
    """reward_model_type: lora needs a LoRA policy (the reward adapter rides on its base); api needs a URL."""
    ft = cfg.finetuning
    if not ft.reward_model:  # reward_model_* keys without it are refused in config/validate.py
        return
    if ft.reward_model_type == "lora" and ft.finetuning_type != "lora":
        raise UserError(
            "reward_model_type lora puts the reward adapter on the policy's base, so the policy must be LoRA too",
            where=cfg.where("reward_model_type"),
            fix="set finetuning_type: lora, or reward_model_type: full",
        )
    if ft.reward_model_type == "api" and not str(ft.reward_model).startswith(("http://", "https://")):
        raise UserError(
            "reward_model_type api needs reward_model to be the URL of a reward server",
            where=cfg.where("reward_model"),
            fix="set reward_model: http://host:port/path (it answers POST {messages: [...]} with {scores: [...]})",
        )
    if ft.reward_model_type != "full":
        for key in ("reward_model_adapters", "reward_model_quantization_bit"):
            if getattr(ft, key) not in (None, ""):
                raise UserError(
                    f"{key} applies to reward_model_type full (a separate reward model)",
                    where=cfg.where(key),
                    fix=f"remove {key}, or set reward_model_type: full",
                )


def check_preference_terms(cfg: RunConfig) -> None:
    """pref_bco_weight needs a reference model's log-ratios; ld_alpha is a weight in [0, 1]."""
    ft = cfg.finetuning
    if ft.stage != "dpo":
        return
    if ft.pref_bco_weight < 0:
        raise UserError("pref_bco_weight must be >= 0", where=cfg.where("pref_bco_weight"))
    if ft.pref_bco_weight and ft.pref_loss in REFERENCE_FREE_LOSSES:
        raise UserError(
            f"pref_bco_weight adds a loss on the log-ratios to a reference model; pref_loss {ft.pref_loss} has none",
            where=cfg.where("pref_bco_weight"),
            fix="use pref_loss sigmoid / ipo / hinge, or remove pref_bco_weight",
        )
    if ft.ld_alpha is not None and not 0.0 <= ft.ld_alpha <= 1.0:
        raise UserError(
            f"ld_alpha {ft.ld_alpha} is outside [0, 1]",
            where=cfg.where("ld_alpha"),
            fix="use a value in [0, 1] (1: plain DPO; LD-DPO's paper uses values like 0.5)",
        )
