"""Build Hugging Face TrainingArguments from the config: our defaults, compute_type, CPU/GPU facts."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.config.stages import stage_record
from tuneforge.config.training import DEFAULTS
from tuneforge.errors import UserError
from tuneforge.model.estimate import needs_checkpointing
from tuneforge.model.loader import load_config
from tuneforge.model.vision_parts import is_vision_config
from tuneforge.train.engines import prepare_engines
from tuneforge.train.optim import optimizer_training_args
from tuneforge.train.swanlab_report import without_swanlab
from tuneforge.utils.devices import auto_compute_type, has_cuda, resolve_dtype
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

logger = get_logger(__name__)


def default_output_dir(cfg: RunConfig) -> str:
    model = Path(cfg.model.model_name_or_path or "model").name or "model"
    return str(Path("saves") / model / cfg.finetuning.finetuning_type / cfg.finetuning.stage)


def training_precision(cfg: RunConfig) -> tuple[str, str]:
    """(precision, the key that chose it): `bf16: true` / `fp16: true`, else compute_type; `auto` resolved for this
    machine (auto_compute_type: bf16 / fp16 on CUDA; bf16 on a CPU with native bf16 (not for BAdam); else fp32)."""
    tr = cfg.training
    if tr.get("bf16"):
        return "bf16", "bf16"
    if tr.get("fp16"):
        return "fp16", "fp16"
    if cfg.model.compute_type == "auto":
        return auto_compute_type(not cfg.finetuning.use_badam)[0], "compute_type"
    return cfg.model.compute_type, "compute_type"


def compute_dtype(cfg: RunConfig):
    """The dtype the model trains in (loads in): see training_precision."""
    return resolve_dtype(*training_precision(cfg))


def log_precision(cfg: RunConfig) -> None:
    """One line at the start of training when compute_type auto chose: what, and why."""
    tr = cfg.training
    if cfg.model.compute_type == "auto" and not tr.get("bf16") and not tr.get("fp16"):
        chosen, why = auto_compute_type(not cfg.finetuning.use_badam)
        logger.info("compute_type auto: %s (%s)", chosen, why)


def resolve_checkpointing(cfg: RunConfig, value) -> bool:
    """`gradient_checkpointing: auto` (the default; TRL configs would default it to True): on only when
    `tuneforge estimate` says the run does not fit in memory without it (1.7-1.9x slower steps otherwise)."""
    if value != "auto":
        return bool(value)
    try:
        return needs_checkpointing(cfg, has_cuda())
    except UserError:  # no local config.json (a hub id): nothing to estimate from
        return False


# Our key (what users write, LLaMA-Factory's too) -> the name transformers >= 5.2x reads without a FutureWarning.
CHECKPOINTING_NAMES = {
    "gradient_checkpointing": "activation_checkpointing",
    "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs",
}


def _set_checkpointing(cfg: RunConfig, cls, kwargs: dict) -> None:
    """Resolve `gradient_checkpointing` (auto) and pass it under the name `cls` reads without a deprecation warning:
    `activation_checkpointing` where it exists. A key the user wrote under the new name wins, as in transformers."""
    wanted = kwargs.get("gradient_checkpointing", "auto")
    if cfg.model.disable_gradient_checkpointing:
        if wanted is True:
            raise UserError(
                "gradient_checkpointing: true and disable_gradient_checkpointing: true contradict each other",
                where=cfg.where("disable_gradient_checkpointing"),
                fix="keep one of them",
            )
        wanted = False
    kwargs["gradient_checkpointing"] = resolve_checkpointing(cfg, wanted)
    if kwargs["gradient_checkpointing"] and "use_reentrant_gc" in cfg.given:  # else transformers' own default
        kwargs["gradient_checkpointing_kwargs"] = {
            **(kwargs.get("gradient_checkpointing_kwargs") or {}),
            "use_reentrant": cfg.model.use_reentrant_gc,
        }
    fields = {f.name for f in dataclasses.fields(cls)}
    for old, new in CHECKPOINTING_NAMES.items():
        if new in fields and old in kwargs:
            value = kwargs.pop(old)
            if kwargs.get(new) is None:
                kwargs[new] = value


def groups_by_length(cfg: RunConfig) -> bool:
    """The default batching of sft (`packing` unset), rm and dpo: batches of rows of similar length, so little
    padding and the same rows per step as a plain shuffle. Not with packing, streaming or a kept order
    (disable_shuffling); not for kto, whose KL term pairs each row with the row before it (read in order)."""
    data = cfg.data
    return (
        stage_record(cfg.finetuning.stage).group_by_length
        and data.packing is None
        and not data.neat_packing
        and not data.streaming
        and not cfg.finetuning.disable_shuffling
    )


def build_training_arguments(cfg: RunConfig, output_dir: str, cls=None, **extra):
    """HF arguments of class `cls` (default Seq2SeqTrainingArguments; a TRL config for the preference stages),
    with `extra` keywords (stage settings) on top of the user's training keys."""
    import torch  # torch / transformers: `import tuneforge.train.run` (the CLI) stays light
    from transformers import Seq2SeqTrainingArguments

    cls = cls or Seq2SeqTrainingArguments
    kwargs = {**DEFAULTS, **cfg.training, **extra, "output_dir": output_dir}
    kwargs["report_to"] = without_swanlab(kwargs.get("report_to"))  # our SwanLab callback reports there
    _set_checkpointing(cfg, cls, kwargs)
    kwargs.pop("resume_from_checkpoint", None)  # resolved by plan_output_dir
    dtype = compute_dtype(cfg)
    pure = cfg.model.compute_type == "pure_bf16"
    kwargs["bf16"] = dtype == torch.bfloat16 and not pure
    kwargs["fp16"] = dtype == torch.float16
    if not has_cuda():
        kwargs["use_cpu"] = True
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            kwargs.setdefault("ddp_backend", "gloo")
    prepare_engines(kwargs)  # DeepSpeed alone needs a process group; FSDP needs several processes
    if cfg.finetuning.uses_adapter:
        kwargs.setdefault("ddp_find_unused_parameters", False)
    if cfg.data.streaming and is_vision_config(load_config(cfg.model)):
        # a batch's pixel values are per patch, not per row: accelerate must not slice a streamed batch by rows
        kwargs.setdefault("accelerator_config", {"dispatch_batches": False})
    kwargs.setdefault("include_num_input_tokens_seen", "non_padding")
    if groups_by_length(cfg):
        kwargs.setdefault("train_sampling_strategy", "group_by_length")
    kwargs.update(optimizer_training_args(cfg))  # GaLore / APOLLO: transformers' own optimizers
    if cfg.data.val_size > 0 or cfg.data.eval_dataset:
        kwargs.setdefault("eval_strategy", "steps")
        kwargs.setdefault("eval_steps", kwargs.get("save_steps"))
        kwargs.setdefault("per_device_eval_batch_size", kwargs["per_device_train_batch_size"])
    if cfg.finetuning.early_stopping_steps is not None:  # EarlyStoppingCallback compares this metric (none: fails)
        kwargs.setdefault("metric_for_best_model", "loss")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise UserError(
            f"invalid training arguments: {str(exc).splitlines()[0]}", fix="correct the training keys"
        ) from exc
