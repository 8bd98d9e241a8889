"""Quantized loading of the base model for QLoRA (bitsandbytes here; more backends in the stages issue)."""

from __future__ import annotations

import importlib.util

from tuneforge.errors import UserError


def quantization_config(args, dtype):
    if args.quantization_method != "bnb":
        raise UserError(
            f"quantization_method '{args.quantization_method}' is not available in this version",
            where="quantization_method",
            fix="use quantization_method: bnb",
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise UserError(
            "QLoRA with bnb needs the bitsandbytes package",
            where="quantization_bit",
            fix="pip install bitsandbytes",
        )
    from transformers import BitsAndBytesConfig

    if args.quantization_bit == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_use_double_quant=args.double_quantization,
        bnb_4bit_quant_type=args.quantization_type,
    )
