"""What the machine can do: device, bf16 support, and the dtype a compute_type resolves to."""

from __future__ import annotations

import warnings
from functools import lru_cache


def has_cuda() -> bool:
    import torch  # torch: asked only when a device matters, never by `import`

    return torch.cuda.is_available()


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: without them bf16 matmuls are emulated (~100x slower than fp32)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def bf16_supported() -> bool:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def resolve_dtype(compute_type: str, field: str = "compute_type"):
    """auto → bf16 where the hardware has it, fp16 on older GPUs, fp32 on a CPU. Warns on emulated bf16."""
    import torch

    if compute_type == "auto":
        if has_cuda():
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    dtype = {"bf16": torch.bfloat16, "pure_bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[
        compute_type
    ]
    if dtype == torch.bfloat16 and not bf16_supported():
        warnings.warn(
            f"{field}: {compute_type} on a CPU without native bf16 is emulated and very slow; use fp32 (or auto) here",
            stacklevel=2,
        )
    if dtype == torch.float16 and not has_cuda():
        warnings.warn(f"{field}: fp16 on CPU is slow and unstable; use fp32 (or auto) here", stacklevel=2)
    return dtype
