"""SwiGLU and the MLP's down projection as one autograd function: the product `silu(gate) * up` is not kept.

After lean_activations' SwiGLU the MLP still keeps three intermediate-sized tensors a token: gate and up (for
SwiGLU's backward) and their product, which `down_proj` keeps for its weight's gradient (or, with LoRA, `lora_A`
keeps it for its own). Recomputing the product from gate and up in the backward (elementwise, cheap) drops the
third: on the 100m benchmark model (intermediate 2,304) 217 MiB of a 2,048-token LoRA batch's 1.27 GiB.

Taken only where `down_proj` is a plain `nn.Linear`, or peft's LoRA `Linear` over one, with one active adapter,
no dropout, no variant (DoRA, ...), no LoRA bias, nothing merged, and no hook on the module (DeepSpeed ZeRO-3 gathers
weights in one): the cases whose forward is exactly `base(x) + lora_B(lora_A(x)) * scaling`. The weights are in the
activations' dtype, or autocast (bf16 on a CPU with native bf16: `compute_type: auto`) would cast them to it; the
function then casts them itself and runs every matmul in that dtype, as autocast does, and returns the weights'
gradients in their own dtype. Anything else goes through the module as before.
"""

from __future__ import annotations

SAVED_FEWER_FUSED = 1  # intermediate-sized values a layer and token: the product
_FUNCTION: list = []


def fused_down_parts(down, gate) -> tuple | None:
    """(weight, bias, lora_A weight, lora_B weight, scaling) of a `down_proj` the fused function can stand in for on
    `gate`'s device and dtype, the LoRA parts None for a plain Linear; None when it cannot."""
    import torch

    autocast = torch.is_autocast_enabled(gate.device.type)
    if _hooked(down) or (autocast and torch.get_autocast_dtype(gate.device.type) != gate.dtype):
        return None
    if type(down) is torch.nn.Linear:
        parts = (down.weight, down.bias, None, None, 1.0)
    elif type(down).__name__ == "Linear" and type(down).__module__ == "peft.tuners.lora.layer":
        parts = _lora_parts(down)
        if parts is None:
            return None
    else:
        return None
    tensors = [t for t in parts[:4] if t is not None]
    plain = all(type(t.data) is torch.Tensor for t in tensors)  # not a DTensor (FSDP) or a quantized weight
    # autocast casts fp32 weights to its dtype (gate's, as gate_proj ran under it); without it they must be gate's
    castable = {gate.dtype, torch.float32} if autocast else {gate.dtype}
    return parts if plain and {t.dtype for t in tensors} <= castable else None


def _lora_parts(down) -> tuple | None:
    import torch

    base = down.base_layer
    if down.disable_adapters or down.merged or type(base) is not torch.nn.Linear or _hooked(base):
        return None
    active = [name for name in down.active_adapters if name in down.lora_A]
    if len(active) != 1:
        return None
    name = active[0]
    lora_a, lora_b = down.lora_A[name], down.lora_B[name]
    if (
        name in getattr(down, "lora_variant", {})
        or type(down.lora_dropout[name]) is not torch.nn.Identity
        or type(lora_a) is not torch.nn.Linear
        or type(lora_b) is not torch.nn.Linear
        or lora_a.bias is not None
        or lora_b.bias is not None
        or _hooked(lora_a)
        or _hooked(lora_b)
    ):
        return None
    return base.weight, base.bias, lora_a.weight, lora_b.weight, down.scaling[name]


def _hooked(module) -> bool:
    from torch.nn.modules import module as torch_module

    hooks = (module._forward_hooks, module._forward_pre_hooks)
    global_hooks = (torch_module._global_forward_hooks, torch_module._global_forward_pre_hooks)
    return any(hooks) or any(global_hooks)


def swiglu_down(gate, up, parts):
    """`down_proj(silu(gate) * up)` for `parts` from fused_down_parts."""
    if not _FUNCTION:
        _FUNCTION.append(_build())
    return _FUNCTION[0].apply(gate, up, *parts)


def _build():
    import torch
    import torch.nn.functional as F

    def like(tensor, dtype):
        return None if tensor is None else tensor.to(dtype)

    class SwiGLUDown(torch.autograd.Function):
        """`linear(silu(gate) * up, weight, bias) + linear(linear(act, lora_a), lora_b) * scaling`, every matmul in
        gate's dtype; keeps gate, up and the rank-sized `linear(act, lora_a)`."""

        @staticmethod
        def forward(ctx, gate, up, weight, bias, lora_a, lora_b, scaling):
            dtype = gate.dtype
            with torch.autocast(gate.device.type, enabled=False):
                act = F.silu(gate) * up
                out = F.linear(act, weight.to(dtype), like(bias, dtype))
                low = None
                if lora_a is not None:
                    low = F.linear(act, lora_a.to(dtype))
                    out = out + F.linear(low, lora_b.to(dtype)) * scaling
            ctx.scaling = scaling
            ctx.save_for_backward(gate, up, weight, lora_a, lora_b, low)
            ctx.bias_dtype = None if bias is None else bias.dtype
            return out

        @staticmethod
        def backward(ctx, grad):
            with torch.autocast(grad.device.type, enabled=False):
                return SwiGLUDown.grads(ctx, grad)

        @staticmethod
        def grads(ctx, grad):
            gate, up, weight_param, lora_a_param, lora_b_param, low = ctx.saved_tensors
            dtype = gate.dtype
            weight, lora_a, lora_b = (like(t, dtype) for t in (weight_param, lora_a_param, lora_b_param))
            grad = grad.to(dtype)
            needs = ctx.needs_input_grad
            sigmoid = torch.sigmoid(gate)
            silu = gate * sigmoid
            act = silu * up
            flat_grad = grad.reshape(-1, grad.shape[-1])
            flat_act = act.reshape(-1, act.shape[-1])
            grad_act = grad @ weight if needs[0] or needs[1] else None
            grad_weight = (flat_grad.t() @ flat_act).to(weight_param.dtype) if needs[2] else None
            grad_bias = flat_grad.sum(0).to(ctx.bias_dtype) if ctx.bias_dtype is not None and needs[3] else None
            grad_a = grad_b = None
            if lora_a is not None:
                grad_low = (grad * ctx.scaling) @ lora_b
                if grad_act is not None:
                    grad_act = grad_act + grad_low @ lora_a
                if needs[4]:
                    grad_a = (grad_low.reshape(-1, grad_low.shape[-1]).t() @ flat_act).to(lora_a_param.dtype)
                if needs[5]:
                    grad_b = ((flat_grad * ctx.scaling).t() @ low.reshape(-1, low.shape[-1])).to(lora_b_param.dtype)
            grad_gate = grad_up = None
            if grad_act is not None:
                grad_gate = grad_act * up * (sigmoid * (1 + gate * (1 - sigmoid)))
                grad_up = grad_act * silu
            return grad_gate, grad_up, grad_weight, grad_bias, grad_a, grad_b, None

    return SwiGLUDown
