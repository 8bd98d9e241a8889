"""Training group: Hugging Face's Seq2SeqTrainingArguments, imported only when a config is loaded."""

from __future__ import annotations

import dataclasses
import importlib.util
import typing
from functools import lru_cache
from typing import Any

from tuneforge.errors import UserError

# Our defaults where HF's differ from what a fine-tuning user expects.
DEFAULTS: dict[str, Any] = {
    "do_train": True,
    "report_to": "none",
    "logging_steps": 5,
    "save_steps": 100,
    "per_device_train_batch_size": 2,
    "learning_rate": 1e-4,
    "num_train_epochs": 3.0,
    "lr_scheduler_type": "cosine",
    "ddp_timeout": 180000000,
    "remove_unused_columns": False,
}


def _args_class():
    from transformers import Seq2SeqTrainingArguments  # heavy (torch): loaded by the first config load, not by `import`

    return Seq2SeqTrainingArguments


@lru_cache(maxsize=1)
def training_field_types() -> dict[str, Any]:
    cls = _args_class()
    hints = typing.get_type_hints(cls)
    types = {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}
    # ours: `auto` turns checkpointing on only when the memory estimate says the run needs it (train/arguments.py)
    types["gradient_checkpointing"] = bool | typing.Literal["auto"]
    return types


def training_field_help() -> dict[str, str]:
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(_args_class()) if f.init}


# report_to's integrations -> the package each needs (the first is the one to install)
TRACKER_PACKAGES = {
    "tensorboard": ("tensorboard", "tensorboardX"),
    "wandb": ("wandb",),
    "mlflow": ("mlflow",),
    "swanlab": ("swanlab",),
    "trackio": ("trackio",),
    "comet_ml": ("comet_ml",),
    "clearml": ("clearml",),
    "dvclive": ("dvclive",),
    "neptune": ("neptune",),
    "codecarbon": ("codecarbon",),
    "dagshub": ("dagshub",),
    "azure_ml": ("azureml",),
    "flyte": ("flytekit",),
}
NO_REPORTING = ("none", "null", "")


def report_to(value: Any, where: str) -> str | list[str]:
    """`report_to` as transformers reads it on every version we allow: `none` (the word, a YAML null, or alone in a
    list) is the string "none" (transformers 5 reads Python None as [None] and fails); a tracker that is not
    installed is refused, naming its package."""
    names = [] if value is None else [value] if isinstance(value, str) else list(value)
    names = [str(n).strip() for n in names if n is not None]
    if all(n.lower() in NO_REPORTING for n in names):
        return "none"
    if any(n.lower() in NO_REPORTING for n in names):
        raise UserError("`none` listed beside trackers", where=where, fix="use none alone, or only trackers")
    for name in names:
        if name == "all":  # transformers reports to every installed integration
            continue
        if name not in TRACKER_PACKAGES:
            choices = ", ".join(["none", "all", *TRACKER_PACKAGES])
            raise UserError(f"unknown tracker '{name}'", where=where, fix=f"use one of: {choices}")
        packages = TRACKER_PACKAGES[name]
        if not any(importlib.util.find_spec(p) for p in packages):
            fix = f"pip install {packages[0]}, or set report_to: none"
            raise UserError(f"{name} needs the {packages[0]} package, which is not installed", where=where, fix=fix)
    return names[0] if len(names) == 1 else names
