"""Shared by the preference stages (dpo, kto): the reference model, and TRL trainers fed with OUR encodings."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from tuneforge.model.adapters import load_adapters, split_names
from tuneforge.model.loader import load_model
from tuneforge.model.new_tokens import resize_embeddings
from tuneforge.train.arguments import compute_dtype
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

logger = get_logger(__name__)


def load_ref_model(cfg: RunConfig, tokenizer=None, needed: bool = True):
    """The frozen reference: the explicit `ref_model` (+ `ref_model_adapters`, merged; quantized to
    `ref_model_quantization_bit`), or for full / freeze a copy
    of the base loaded as the policy was (dtype, RoPE, resized vocabulary). None for LoRA (the base is the policy with
    its adapter disabled) and when `needed` is False (reference-free losses)."""
    ft = cfg.finetuning
    if not ft.ref_model and (ft.uses_adapter or not needed):
        return None
    if ft.ref_model:  # quantized as LF does: by ref_model_quantization_bit only, not by the policy's bits
        args = dataclasses.replace(
            cfg.model,
            model_name_or_path=ft.ref_model,
            adapter_name_or_path=None,
            quantization_bit=ft.ref_model_quantization_bit,
        )
    else:
        args = cfg.model  # the base, with any adapter_name_or_path (full/freeze take none)
    model = load_model(args, compute_dtype(cfg), cfg.data.cutoff_len)
    if tokenizer is not None:  # grown as the policy's was: new tokens (rounded up to 64), a template's stop words
        resize_embeddings(model, tokenizer, args)
    adapters = split_names(ft.ref_model_adapters)
    if adapters:
        model = load_adapters(model, adapters, is_trainable=False)
        if args.quantization_bit is None:  # a quantized base keeps its adapters unmerged (as LF's loader does)
            model = model.merge_and_unload()
    model.requires_grad_(False)
    return model.eval()


def drop_ref_adapter(trainer) -> None:
    """TRL copies an already-wrapped LoRA adapter into a frozen 'ref' adapter; we want the reference to be the base
    with the adapter disabled (LLaMA-Factory's rule) and an output folder that holds only the trained adapter."""
    from peft import PeftModel  # heavy: only a preference run needs it

    model = trainer.accelerator.unwrap_model(trainer.model)
    if isinstance(model, PeftModel) and "ref" in model.peft_config:
        model.delete_adapter("ref")
        model.set_adapter("default")


def ftx_loss_weights(pref_ftx: float) -> tuple[list[str], list[float]]:
    """Extra TRL loss types and weights for the SFT term on the chosen responses."""
    return (["sft"], [pref_ftx]) if pref_ftx > 0 else ([], [])
