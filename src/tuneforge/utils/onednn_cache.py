"""A bounded oneDNN primitive cache for a training process on a CPU.

oneDNN runs torch's bf16 matmuls on a CPU (autocast, `compute_type: auto` on a CPU with AVX512-BF16 or AMX). It
keeps each primitive it builds, one per matmul shape and direction with its buffers, in a process-wide LRU of
1,024. Padding-free and length-grouped batches give almost every step a token count of its own, so a run fills that
cache with primitives no later step reuses. Measured on a 2-core AMD EPYC with AVX512-BF16 (2026-12-07, the
benchmarks' LoRA rows in bf16): 128 entries, a step's worth, train at the same speed with a smaller peak RSS (tiny
1,075 → 870 MiB, 100m 1,646 → 1,538 MiB); 0 (no cache) saves a little more and halves the speed.
"""

from __future__ import annotations

import os

ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
OLD_ENV = "DNNL_PRIMITIVE_CACHE_CAPACITY"  # oneDNN's earlier name, still read
CAPACITY = 128


def bound_primitive_cache(environ=None) -> None:
    """Set the capacity unless the user has; before torch loads (oneDNN reads it when it first builds one)."""
    environ = os.environ if environ is None else environ
    if ENV not in environ and OLD_ENV not in environ:
        environ[ENV] = str(CAPACITY)
