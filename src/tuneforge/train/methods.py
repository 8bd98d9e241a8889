"""Trainer callbacks that belong to a training method: PiSSA's conversion to a plain LoRA adapter, BAdam's.

A PiSSA adapter only makes sense on the PiSSA residual model (the base minus its principal components), so the
adapter a PiSSA run saves in output_dir does not fit the original base. With `pissa_convert`, the run keeps the
initial adapter (output_dir/pissa_init) and at the end writes output_dir/pissa_converted: a standard LoRA adapter
(rank 2r) for the original base model, which plain peft, chat and export load like any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from transformers import TrainerCallback

from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

logger = get_logger(__name__)
PISSA_INIT, PISSA_CONVERTED = "pissa_init", "pissa_converted"


class PissaConvertCallback(TrainerCallback):
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        init_dir = Path(args.output_dir) / PISSA_INIT
        if args.should_save and not (init_dir / "adapter_config.json").is_file():  # a resumed run has it already
            _save_plain(model, init_dir)
            logger.info("PiSSA: initial adapter saved to %s", init_dir)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if not args.should_save:
            return
        out = Path(args.output_dir)
        model.save_pretrained(out / PISSA_CONVERTED, path_initial_model_for_weight_conversion=str(out / PISSA_INIT))
        logger.info("PiSSA: adapter converted to a standard LoRA in %s", out / PISSA_CONVERTED)


def _save_plain(model, path: Path) -> None:
    """Save the adapter with init_lora_weights=True so loading it never re-runs the PiSSA SVD."""
    config = model.peft_config["default"]
    init = config.init_lora_weights
    config.init_lora_weights = True
    try:
        model.save_pretrained(path)
    finally:
        config.init_lora_weights = init


def method_callbacks(cfg: RunConfig) -> list:
    ft = cfg.finetuning
    if ft.use_badam:
        from badam import BAdamCallback  # gradient checkpointing that skips the frozen blocks

        return [BAdamCallback()]
    if ft.finetuning_type != "lora" or not ft.pissa_init:
        return []
    if not ft.pissa_convert:
        logger.warning(
            "PiSSA: the adapter in output_dir fits the PiSSA residual model only, not the original base; "
            "set pissa_convert: true to also save a standard LoRA adapter (pissa_converted/)"
        )
        return []
    return [PissaConvertCallback()]
