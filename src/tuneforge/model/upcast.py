"""upcast_layernorm and upcast_lmhead_output, as LLaMA-Factory's prepare_model_for_training does them (training
only): the norm layers' 1-d weights kept in fp32, and the LM head's output (the logits) cast to fp32."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.model_args import ModelArguments

logger = get_logger(__name__)
NORM_NAMES = ("norm", "ln")  # LF's LAYERNORM_NAMES: a 1-d parameter whose name holds one of these


def apply_upcasts(model, args: ModelArguments) -> None:
    if args.upcast_layernorm:
        upcast_layernorm(model)
    if args.upcast_lmhead_output:
        upcast_lmhead_output(model)


def upcast_layernorm(model) -> None:
    """fp32 norm weights: the optimizer then updates them without 16-bit rounding. A norm's output is cast back to
    its input's dtype, so the 16-bit layer after it works without autocast too (compute_type: pure_bf16)."""
    import torch  # torch: a process that loads a model has it already

    upcast = set()
    for name, param in model.named_parameters():
        if param.ndim == 1 and param.dtype != torch.float32 and any(n in name for n in NORM_NAMES):
            param.data = param.data.to(torch.float32)
            upcast.add(name.rsplit(".", 1)[0])
    for name, module in model.named_modules():
        if name in upcast:
            module.register_forward_hook(_output_like_input)
    logger.info("upcast_layernorm: %d norm layers keep fp32 weights", len(upcast))


def _output_like_input(module, inputs, output):
    first = inputs[0] if inputs else None
    if first is None or not first.is_floating_point() or not hasattr(output, "dtype"):
        return output
    return output.to(first.dtype)


def upcast_lmhead_output(model) -> None:
    import torch

    head = model.get_output_embeddings()
    if isinstance(head, torch.nn.Linear) and head.weight.dtype != torch.float32:
        head.register_forward_hook(_to_fp32)
        logger.info("upcast_lmhead_output: logits in fp32")


def _to_fp32(module, inputs, output):
    import torch

    return output.to(torch.float32)
