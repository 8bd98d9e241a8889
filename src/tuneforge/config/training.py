"""Training group: Hugging Face's Seq2SeqTrainingArguments, imported only when a config is loaded."""

from __future__ import annotations

import dataclasses
import typing
from functools import lru_cache
from typing import Any

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
