"""upcast_layernorm and upcast_lmhead_output, as LLaMA-Factory's prepare_model_for_training does them (training
only): the norm layers' 1-d weights kept in fp32, and the LM head's output (the logits) cast to fp32. And the
trainable weights of a 16-bit run kept in fp32 (its master weights), as LLaMA-Factory's init_adapter does."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneforge.config.engines import shards_weights
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.config.model_args import ModelArguments

logger = get_logger(__name__)
NORM_NAMES = ("norm", "ln")  # LF's LAYERNORM_NAMES: a 1-d parameter whose name holds one of these


def apply_upcasts(model, args: ModelArguments) -> None:
    if args.upcast_layernorm:
        upcast_layernorm(model)
    if args.upcast_lmhead_output:
        upcast_lmhead_output(model)


def keeps_fp32_master_weights(cfg: RunConfig, sixteen_bit: bool) -> bool:
    """Whether a run keeps its trainable weights in fp32 (upcast_trainable), as LLaMA-Factory does: yes when it
    computes in 16 bits (`sixteen_bit`: bf16 / fp16), except with compute_type pure_bf16 (everything in bf16, by
    request), BAdam (which updates one block at a time in the model's dtype), and DeepSpeed ZeRO-3 / FSDP on an
    unquantized model (the engine keeps fp32 master weights itself)."""
    if not sixteen_bit or cfg.model.compute_type == "pure_bf16" or cfg.finetuning.use_badam:
        return False
    return cfg.model.quantization_bit is not None or not shards_weights(cfg)


def upcast_trainable(model) -> None:
    """Cast the trainable 16-bit parameters to fp32; frozen ones stay as loaded.

    Autocast still runs the matmuls in 16 bits, but the optimizer updates fp32 weights: an update below a bf16
    weight's precision (~1/256 of it) would be lost, and fp16 weights would need a scaler of their own. A checkpoint
    stored in 16 bits (most are) loses nothing by loading in 16 bits first."""
    import torch

    for param in model.parameters():
        if param.requires_grad and param.dtype in (torch.bfloat16, torch.float16):
            param.data = param.data.to(torch.float32)


def downcast_frozen(model, dtype, keep_norms: bool = False) -> None:
    """Cast the frozen fp32 parameters to `dtype` (a model loaded in fp32 for full tuning: the parts it leaves
    frozen take 16 bits, as if loaded so); `keep_norms` (upcast_layernorm): not the norm weights."""
    import torch

    for name, param in model.named_parameters():
        if keep_norms and _is_norm_weight(name, param):
            continue
        if not param.requires_grad and param.dtype == torch.float32 and dtype != torch.float32:
            param.data = param.data.to(dtype)


def _is_norm_weight(name: str, param) -> bool:
    return param.ndim == 1 and any(n in name for n in NORM_NAMES)


def upcast_layernorm(model) -> None:
    """fp32 norm weights: the optimizer then updates them without 16-bit rounding. A norm's output is cast back to
    its input's dtype, so the 16-bit layer after it works without autocast too (compute_type: pure_bf16)."""
    import torch  # torch: a process that loads a model has it already

    upcast = set()
    for name, param in model.named_parameters():
        if param.dtype != torch.float32 and _is_norm_weight(name, param):
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
    """Whatever the head's weight dtype: under bf16 autocast an fp32 head (full tuning's fp32 master weights) still
    returns 16-bit logits."""
    import torch

    head = model.get_output_embeddings()
    if isinstance(head, torch.nn.Linear):
        head.register_forward_hook(_to_fp32)
        logger.info("upcast_lmhead_output: logits in fp32")


def _to_fp32(module, inputs, output):
    import torch

    return output.to(torch.float32)
