"""Speed-ups: the attention implementation and optional kernels (flash-attention 2, Liger, Unsloth).

`booster: auto` means the sdpa attention of PyTorch, which runs everywhere. Any other booster is used only where
its package is installed and the hardware runs it; otherwise it is one UserError before any weight loads.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.utils import devices
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.model_args import ModelArguments

logger = get_logger(__name__)
ATTENTION = {"auto": "sdpa", "sdpa": "sdpa", "eager": "eager", "disabled": "eager", "fa2": "flash_attention_2"}
PACKAGES = {"flashattn2": "flash_attn", "liger_kernel": "liger_kernel", "unsloth": "unsloth"}


def booster_name(args: ModelArguments) -> str:
    """The booster asked for, with LLaMA-Factory's older flags folded in."""
    if args.use_unsloth:
        return "unsloth"
    if args.enable_liger_kernel:
        return "liger_kernel"
    if args.flash_attn == "fa2":
        return "flashattn2"
    return args.booster


def check_booster(args: ModelArguments) -> None:
    """One clear error when the booster cannot run here (missing package, or no CUDA GPU)."""
    booster = booster_name(args)
    if booster == "auto":
        return
    where = "flash_attn" if args.flash_attn == "fa2" and args.booster != "flashattn2" else "booster"
    package = PACKAGES[booster]
    if importlib.util.find_spec(package) is None:
        raise UserError(
            f"booster {booster} needs the '{package}' package and a CUDA GPU; '{package}' is not installed",
            where=where,
            fix=f"pip install {package.replace('_', '-')} on a CUDA machine, or set booster: auto",
        )
    if not devices.has_cuda():
        raise UserError(
            f"booster {booster} needs a CUDA GPU (its kernels do not run on a CPU)",
            where=where,
            fix="set booster: auto (sdpa attention) on this machine",
        )
    if booster == "unsloth":
        raise UserError(
            "booster unsloth replaces the whole model loader and is not wired into TuneForge yet",
            where=where,
            fix="use booster: liger_kernel or flashattn2",
        )


def attention_implementation(args: ModelArguments) -> str:
    if booster_name(args) == "flashattn2":
        return "flash_attention_2"
    return ATTENTION[args.flash_attn]


def apply_kernels(model, args: ModelArguments):
    """Patch the loaded model with the booster's kernels (Liger); flash-attention is chosen at load."""
    if booster_name(args) != "liger_kernel":
        return model
    from liger_kernel.transformers import _apply_liger_kernel_to_instance  # optional package, CUDA only

    _apply_liger_kernel_to_instance(model=model)
    logger.info("liger kernels applied to %s", type(model).__name__)
    return model
