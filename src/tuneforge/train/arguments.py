"""Build Hugging Face TrainingArguments from the config: our defaults, compute_type, CPU/GPU facts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.config.training import DEFAULTS
from tuneforge.errors import UserError
from tuneforge.utils.devices import has_cuda, resolve_dtype

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig


def default_output_dir(cfg: RunConfig) -> str:
    model = Path(cfg.model.model_name_or_path or "model").name or "model"
    return str(Path("saves") / model / cfg.finetuning.finetuning_type / cfg.finetuning.stage)


def compute_dtype(cfg: RunConfig):
    tr = cfg.training
    if tr.get("bf16"):
        return resolve_dtype("bf16", "bf16")
    if tr.get("fp16"):
        return resolve_dtype("fp16", "fp16")
    return resolve_dtype(cfg.model.compute_type)


def build_training_arguments(cfg: RunConfig, output_dir: str, cls=None, **extra):
    """HF arguments of class `cls` (default Seq2SeqTrainingArguments; a TRL config for the preference stages),
    with `extra` keywords (stage settings) on top of the user's training keys."""
    import torch
    from transformers import Seq2SeqTrainingArguments

    cls = cls or Seq2SeqTrainingArguments
    kwargs = {**DEFAULTS, **cfg.training, **extra, "output_dir": output_dir}
    kwargs.setdefault("gradient_checkpointing", False)  # TRL configs default it to True
    kwargs.pop("resume_from_checkpoint", None)  # resolved by plan_output_dir
    dtype = compute_dtype(cfg)
    pure = cfg.model.compute_type == "pure_bf16"
    kwargs["bf16"] = dtype == torch.bfloat16 and not pure
    kwargs["fp16"] = dtype == torch.float16
    if not has_cuda():
        kwargs["use_cpu"] = True
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            kwargs.setdefault("ddp_backend", "gloo")
    if cfg.finetuning.finetuning_type == "lora":
        kwargs.setdefault("ddp_find_unused_parameters", False)
    kwargs.setdefault("include_num_input_tokens_seen", "non_padding")
    if cfg.data.val_size > 0 or cfg.data.eval_dataset:
        kwargs.setdefault("eval_strategy", "steps")
        kwargs.setdefault("eval_steps", kwargs.get("save_steps"))
        kwargs.setdefault("per_device_eval_batch_size", kwargs["per_device_train_batch_size"])
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise UserError(
            f"invalid training arguments: {str(exc).splitlines()[0]}", fix="correct the training keys"
        ) from exc
