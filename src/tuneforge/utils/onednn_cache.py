"""Bounded oneDNN primitive caches for a training process on a CPU.

oneDNN runs torch's bf16 matmuls on a CPU (autocast, `compute_type: auto` on a CPU with AVX512-BF16 or AMX), and
each primitive it builds, one per matmul shape and direction, holds ~0.4-0.6 MiB of generated code and buffers.
Two caches keep them: oneDNN's own (`ONEDNN_PRIMITIVE_CACHE_CAPACITY`, 1,024 by default) and, above it, the one of
ideep, torch's wrapper (`LRU_CACHE_CAPACITY`, 1,024 by default), which holds its primitives alive whatever oneDNN's
capacity is. Padding-free and length-grouped batches give almost every step a token count of its own, so a run fills
both with primitives no later step reuses: a process grows with the number of distinct steps it has run, up to
~0.5 GiB. A step reuses its own shapes (every layer the same), so a bound of about a step's worth keeps the speed.
Measured on a 2-core AMD EPYC with AVX512-BF16 (2026-12-07, the LF-format benchmark configs in bf16; docs/benchmarks.md,
"The fast defaults"):

- oneDNN's at 128 (ideep's at 1,024): tiny LoRA 1,075 → 870 MiB, 100m LoRA 1,646 → 1,538 MiB, same speed; 0 (no
  cache) halves it.
- ideep's at 64: one epoch of tiny LoRA 870 → 724 MiB, freeze 827 → 719, full 898 → 816, DPO 1,104 → 1,025; three
  epochs of tiny LoRA 1,079 → 758, of 100m LoRA 1,997 → 1,754. A one-epoch 100m run, which holds fewer primitives
  than a long one, peaks 60-90 MiB higher: evicted primitives' memory is not all reused.
- oneDNN's then at 64 as well: tiny full 829 → 800 MiB, 100m LoRA 1,543 → 1,502, 100m full 3,162 → 3,128.
Train times within ±5 % throughout (3-epoch 100m LoRA 101.6 against 105.9 s the widest).
"""

from __future__ import annotations

import os

ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
OLD_ENV = "DNNL_PRIMITIVE_CACHE_CAPACITY"  # oneDNN's earlier name, still read
CAPACITY = 64
IDEEP_ENV = "LRU_CACHE_CAPACITY"  # read when ideep builds its first primitive, not at import
IDEEP_CAPACITY = 64


def bound_primitive_cache(environ=None) -> None:
    """Set both capacities unless the user has; before the first bf16 matmul (oneDNN and ideep read them then)."""
    environ = os.environ if environ is None else environ
    if ENV not in environ and OLD_ENV not in environ:
        environ[ENV] = str(CAPACITY)
    environ.setdefault(IDEEP_ENV, str(IDEEP_CAPACITY))
