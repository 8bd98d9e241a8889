"""What the machine can do: device, bf16 support, and the dtype a compute_type resolves to."""

from __future__ import annotations

import os
import warnings
from functools import lru_cache


def has_cuda() -> bool:
    import torch  # torch: asked only when a device matters, never by `import`

    return torch.cuda.is_available()


# /proc/cpuinfo flag -> the name `tuneforge env` and the training log give it
CPU_BF16_FLAGS = {"amx_bf16": "AMX-BF16", "avx512_bf16": "AVX512-BF16"}
# Set to 0 to keep `compute_type: auto` on fp32 on a CPU that has native bf16 (the test suite does: its numeric
# checks were made in fp32, and must not change with the CI machine's CPU).
CPU_BF16_ENV = "TUNEFORGE_CPU_BF16"


@lru_cache(maxsize=1)
def cpu_bf16_features() -> tuple[str, ...]:
    """This CPU's native bf16 instructions ("AMX-BF16", "AVX512-BF16"), read from /proc/cpuinfo's flags; () without
    them (bf16 matmuls are then emulated, 10-19x slower than fp32) or where /proc/cpuinfo is absent."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return ()
    flags = {flag for line in lines if line.startswith("flags") for flag in line.partition(":")[2].split()}
    return tuple(name for flag, name in CPU_BF16_FLAGS.items() if flag in flags)


def cpu_has_native_bf16() -> bool:
    return bool(cpu_bf16_features())


def bf16_supported() -> bool:
    import torch

    if has_cuda():
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def auto_compute_type(master_weights: bool = True) -> tuple[str, str]:
    """What `compute_type: auto` trains in on this machine, and why (for the log line). CUDA: bf16 where the GPU
    supports it, else fp16 (the Trainer scales the loss). CPU: bf16 autocast where the CPU has native bf16 (on an
    AVX512-BF16 CPU a 100M model trained 1.62x (LoRA), 1.67x (full) and 1.80x (freeze) faster than in fp32:
    docs/benchmarks.md), else fp32. The trained weights stay fp32 (peft's adapters; full / freeze: fp32 master
    weights, model/upcast.py keeps_fp32_master_weights). `master_weights` False (BAdam, which updates its block in the
    model's dtype): fp32 on a CPU, as the trained weights would be bf16 themselves (an update below ~1/256 of a
    weight is lost)."""
    import torch

    if has_cuda():
        if torch.cuda.is_bf16_supported():
            return "bf16", "this GPU supports bf16"
        return "fp16", "this GPU has no bf16; fp16 with a loss scaler"
    features = " and ".join(cpu_bf16_features())
    if not features:
        return "fp32", "no native bf16 on this CPU"
    if os.environ.get(CPU_BF16_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return "fp32", f"{CPU_BF16_ENV}=0, though this CPU has {features}"
    if not master_weights:
        return "fp32", f"this CPU has {features}, but BAdam would update bf16 weights"
    return "bf16", f"this CPU has {features}"


def resolve_dtype(compute_type: str, field: str = "compute_type"):
    """auto → bf16 where the GPU has it, fp16 on older GPUs, fp32 on a CPU (what inference's `infer_dtype: auto`
    means; training's auto is `auto_compute_type`). Warns on emulated bf16."""
    import torch

    if compute_type == "auto":
        if has_cuda():
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    dtype = {"bf16": torch.bfloat16, "pure_bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[
        compute_type
    ]
    if dtype == torch.bfloat16 and not bf16_supported():
        where = "this GPU has no bf16" if has_cuda() else "a CPU without native bf16 emulates it, very slowly"
        warnings.warn(f"{field}: {compute_type}: {where}; use auto here", stacklevel=2)
    if dtype == torch.float16 and not has_cuda():
        warnings.warn(f"{field}: fp16 on CPU is slow and unstable; use fp32 (or auto) here", stacklevel=2)
    return dtype
