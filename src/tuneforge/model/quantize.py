"""Quantized base models for QLoRA: bitsandbytes (nf4 / fp4 / int8) through transformers, HQQ through the hqq
library itself (transformers' HqqConfig refuses the CPU), and a clear error for backends that cannot run here."""

from __future__ import annotations

import importlib.util
import re
import warnings
from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.utils.devices import has_cuda
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.model_args import ModelArguments

logger = get_logger(__name__)
HQQ_GROUP_SIZE = 64  # LLaMA-Factory's and HqqConfig's default


def check_quantization(args: ModelArguments) -> None:
    """Every reason the asked-for quantization cannot run here, as one UserError (before any weight loads)."""
    bits, method = args.quantization_bit, args.quantization_method
    if bits is None:
        return
    if bits not in (4, 8):
        raise UserError(f"quantization_bit {bits} is not supported", where="quantization_bit", fix="use 4 or 8")
    if method == "eetq":
        raise UserError(
            "eetq needs the eetq package and a CUDA GPU (8-bit only); it has no installable package for this platform",
            where="quantization_method",
            fix="use quantization_method: bnb or hqq",
        )
    if method == "bnb":
        if args.quantization_type not in ("nf4", "fp4"):
            raise UserError(
                f"unknown quantization_type '{args.quantization_type}'", where="quantization_type", fix="use nf4 or fp4"
            )
        _needs("bitsandbytes", "bitsandbytes")
    elif method == "hqq":
        _needs("hqq", "hqq")
    else:
        raise UserError(
            f"unknown quantization_method '{method}'", where="quantization_method", fix="use bnb, hqq or eetq"
        )


def _needs(module: str, package: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise UserError(
            f"quantization_method needs the '{package}' package, which is not installed",
            where="quantization_method",
            fix=f"pip install {package}",
        )


def quantization_config(args: ModelArguments, dtype, keep: tuple[str, ...] = ()):
    """The transformers `quantization_config` for from_pretrained, or None when we quantize after loading (hqq).
    `keep`: module prefixes left unquantized (a VLM's vision tower and projector, as LLaMA-Factory does)."""
    check_quantization(args)
    if args.quantization_method != "bnb":
        return None
    # heavy / optional (bitsandbytes, hqq): only a quantized load needs them
    from transformers import BitsAndBytesConfig

    # bitsandbytes' int8 matmul warns on every call that fp32 inputs are cast to fp16: true, known, and noisy
    warnings.filterwarnings("ignore", message="MatMul8bitLt: inputs will be cast")
    skip = {"llm_int8_skip_modules": [*keep, "lm_head"]} if keep else {}
    if args.quantization_bit == 8:
        return BitsAndBytesConfig(load_in_8bit=True, **skip)
    return BitsAndBytesConfig(
        **skip,
        load_in_4bit=True,
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_use_double_quant=args.double_quantization,
        bnb_4bit_quant_type=args.quantization_type,
    )


def quantize_hqq(model, bits: int, dtype, keep: tuple[str, ...] = ()):
    """Replace every linear layer inside the transformer blocks (not the heads, nor under the `keep` prefixes) by
    hqq's HQQLinear."""
    import torch
    from hqq.core.quantize import BaseQuantizeConfig, HQQLinear

    device = "cuda" if has_cuda() else "cpu"
    config = BaseQuantizeConfig(nbits=bits, group_size=HQQ_GROUP_SIZE)
    output = model.get_output_embeddings()
    count = 0
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            in_block = re.search(r"\.\d+(\.|$)", f"{parent_name}.{name}")
            kept = f"{parent_name}.{name}".startswith(keep) if keep else False
            if not isinstance(child, torch.nn.Linear) or child is output or not in_block or kept:
                continue
            if child.weight.numel() % HQQ_GROUP_SIZE:
                raise UserError(
                    f"layer {parent_name}.{name} has {child.weight.numel()} weights, not a multiple of the hqq "
                    f"group size {HQQ_GROUP_SIZE}",
                    where="quantization_method",
                    fix="use quantization_method: bnb",
                )
            setattr(parent, name, HQQLinear(child, config, compute_dtype=dtype, device=device))
            count += 1
    model.hqq_quantized = True  # what peft looks for (not `is_quantized`: the Trainer would then want an hf_quantizer)
    logger.info("hqq: quantized %d linear layers to %d bits (group size %d)", count, bits, HQQ_GROUP_SIZE)
    return model


def is_quantized(model) -> bool:
    return bool(getattr(model, "hqq_quantized", False) or getattr(model, "hf_quantizer", None) is not None)


def prepare_for_kbit_training(model, gradient_checkpointing: bool = False) -> None:
    """peft's prepare_model_for_kbit_training, minus its cast of every fp16/bf16 weight to fp32 (a large
    memory cost on the embeddings and head of a real model): freeze the base; with gradient checkpointing, make
    the embeddings' output require grad so gradients reach the adapters through checkpointed blocks."""
    for param in model.parameters():
        param.requires_grad_(False)
    if gradient_checkpointing:
        model.enable_input_require_grads()
