"""The range of every numeric key, checked before anything loads: a batch size of 0, a learning rate of -1 or
`max_steps: 0` is one line naming the key, not a traceback from the Trainer or a run that trains nothing and
reports success. One row per key (ours and the Trainer's); keys the user did not set keep their defaults, which
are in range."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.run_config import RunConfig


@dataclass(frozen=True)
class Range:
    holds: Callable[[Any], bool]
    rule: str  # "<key> must be <rule>"
    fix: str | None = None


def at_least(low: int, fix: str | None = None) -> Range:
    return Range(lambda v: v >= low, f"at least {low}", fix)


def above(low: float, fix: str | None = None) -> Range:
    return Range(lambda v: v > low, f"> {low}", fix)


def fraction(fix: str | None = None) -> Range:
    return Range(lambda v: 0 <= v < 1, "in [0, 1)", fix)


def _ratio_or_count(v) -> bool:
    return 0 <= v < 1 or (v >= 1 and float(v).is_integer())


ONE_OR_MORE = at_least(1)
POSITIVE = above(0)
NOT_NEGATIVE = at_least(0)
RANGES: dict[str, Range] = {
    # batches and steps
    "per_device_train_batch_size": ONE_OR_MORE,
    "infer_batch_size": ONE_OR_MORE,
    "per_device_eval_batch_size": ONE_OR_MORE,
    "gradient_accumulation_steps": ONE_OR_MORE,
    "num_train_epochs": above(0, "set a number of epochs like 3, or max_steps"),
    "max_steps": Range(lambda v: v == -1 or v >= 1, "-1 (use num_train_epochs) or at least 1"),
    "logging_steps": POSITIVE,
    "save_steps": POSITIVE,
    "eval_steps": POSITIVE,
    "save_total_limit": ONE_OR_MORE,
    "warmup_steps": NOT_NEGATIVE,
    "seed": NOT_NEGATIVE,
    "dataloader_num_workers": NOT_NEGATIVE,
    # optimizer
    "learning_rate": above(0, "use e.g. 1e-4 for LoRA, 1e-5 for full fine-tuning"),
    "weight_decay": NOT_NEGATIVE,
    "max_grad_norm": Range(lambda v: v >= 0, "at least 0 (0: no clipping)"),
    "adam_beta1": fraction(),
    "adam_beta2": fraction(),
    "adam_epsilon": POSITIVE,
    # data
    "cutoff_len": at_least(2),
    "max_samples": ONE_OR_MORE,
    "val_size": Range(_ratio_or_count, "a ratio in [0, 1) or a whole number of samples", "use a fraction like 0.1"),
    "preprocessing_num_workers": ONE_OR_MORE,
    "image_max_pixels": ONE_OR_MORE,
    "image_min_pixels": NOT_NEGATIVE,
    # methods
    "lora_rank": ONE_OR_MORE,
    "lora_alpha": POSITIVE,
    "lora_dropout": fraction(),
    "oft_rank": NOT_NEGATIVE,
    "oft_block_size": NOT_NEGATIVE,
    "module_dropout": fraction(),
    "pissa_iter": Range(lambda v: v == -1 or v >= 1, "-1 (exact SVD) or at least 1"),
    "freeze_trainable_layers": Range(lambda v: v != 0, "non-zero (n > 0: the last n layers; n < 0: the first n)"),
    # generation
    "max_new_tokens": ONE_OR_MORE,
    "max_length": ONE_OR_MORE,
    "num_beams": ONE_OR_MORE,
    "eval_num_beams": ONE_OR_MORE,
    "early_stopping_steps": ONE_OR_MORE,
    "temperature": NOT_NEGATIVE,
    "top_p": Range(lambda v: 0 < v <= 1, "in (0, 1]"),
    "top_k": NOT_NEGATIVE,
    "repetition_penalty": POSITIVE,
    # grpo
    "num_generations": at_least(2, "GRPO compares completions within a group: use 4 to 16"),
    "max_prompt_length": ONE_OR_MORE,
    "max_completion_length": ONE_OR_MORE,
    "num_iterations": ONE_OR_MORE,
    "beta": NOT_NEGATIVE,
    "epsilon": POSITIVE,
    "epsilon_high": POSITIVE,
    "length_reward_target": ONE_OR_MORE,
}


def check_ranges(cfg: RunConfig) -> None:
    """Every numeric key the config sets lies in its range; None (unset where that is allowed) passes."""
    for key, value in cfg.given.items():
        limit = RANGES.get(key)
        if limit is None or value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not limit.holds(value):
            raise UserError(f"{key} must be {limit.rule}, got {value}", where=cfg.where(key), fix=limit.fix)
