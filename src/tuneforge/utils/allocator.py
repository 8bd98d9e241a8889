"""jemalloc for a training process on a Linux CPU, when the system has it (Debian / Ubuntu: `libjemalloc2`).

On a CPU every activation is a malloc. glibc's allocator serves tensors up to 32 MiB from its heap and, as a step
frees its temporaries around the tensors it keeps for the backward pass, leaves holes the next, larger ones do not
fit: the heap grows with the allocation history, not with what is alive. Measured here (benchmarks/, docs/
benchmarks.md "The memory allocator"): the tiny LoRA row peaked at 980-990 MiB with glibc and 805-812 MiB with
jemalloc at the same speed; the 100m LoRA row with gradient checkpointing at 2.4-2.7 GiB against 1.2 GiB, of which
~1.4 GiB was free heap. Fixing glibc's mmap threshold instead (MALLOC_MMAP_THRESHOLD_) removes it too but costs
40-50 % in time (every large tensor becomes fresh zeroed pages). Intel's PyTorch CPU launcher preloads jemalloc or
tcmalloc for the same reason.

A library can only replace malloc before the process starts, so `tuneforge train` re-executes itself once, the
same command line with LD_PRELOAD set, before it imports torch. TUNEFORGE_MALLOC picks: `auto` (the default:
jemalloc where found, on a machine without an NVIDIA GPU, whose activations are not in host memory), `system` (never
preload), or the path of a malloc library to preload. jemalloc runs with JEMALLOC_CONF unless MALLOC_CONF is set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tuneforge.errors import UserError

ENV = "TUNEFORGE_MALLOC"
LIBRARY = "libjemalloc.so.2"
# Where distributions put it (Debian / Ubuntu multiarch, Fedora / RHEL, Alpine, /usr/local), then a conda env's lib
SEARCH_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
)
NVIDIA_GPUS = "/proc/driver/nvidia/gpus"
# jemalloc's settings unless MALLOC_CONF says otherwise: large tensors in the ordinary arenas (its default sends
# those over 8 MiB to one that hands pages back at once, to be faulted in again) and freed pages kept for reuse (a
# training process's footprint is its peak anyway). Measured on the tiny LoRA epoch, 3 runs each: train time 6.35 s
# against 6.78 s with jemalloc's defaults and 6.75 s with glibc; peak 825-842 MiB against 812 and 963-997 MiB.
# A freed extent of any size may be split for a smaller tensor (jemalloc's default reuses one only up to 64x the
# request, so a step's freed activations sat beside the fp32 gradients it mapped anew): 100m full 3,113-3,121 ->
# 3,010 MiB, 100m LoRA 1,555 -> 1,448, tiny LoRA 721 -> 704, at the same train times (2026-12-07, EPYC, bf16).
JEMALLOC_CONF = "oversize_threshold:0,dirty_decay_ms:-1,muzzy_decay_ms:-1,lg_extent_max_active_fit:16"


def allocator_to_preload(environ=None) -> str | None:
    """The malloc library this training process should run on, or None: the system's (opted out, not Linux, a GPU
    present, none found, or one already preloaded). A named library that is not a file is a UserError."""
    environ = os.environ if environ is None else environ
    choice = environ.get(ENV, "auto").strip() or "auto"
    if choice == "system" or not sys.platform.startswith("linux"):
        return None
    if choice != "auto":
        if not Path(choice).is_file():
            raise UserError(
                f"{choice} is not a file", where=ENV, fix="set it to a malloc library's path, to auto or to system"
            )
        return choice
    if any(Path(NVIDIA_GPUS).glob("*")):
        return None
    dirs = [*SEARCH_DIRS, *(f"{environ[k]}/lib" for k in ("CONDA_PREFIX", "VIRTUAL_ENV") if environ.get(k))]
    return next((str(Path(d) / LIBRARY) for d in dirs if (Path(d) / LIBRARY).is_file()), None)


def allocator_environment(environ=None) -> dict[str, str] | None:
    """`environ` (default: this process's) with the chosen allocator preloaded, or None when a process started with
    it would already run on that allocator (or on the system's). Raises as allocator_to_preload."""
    environ = os.environ if environ is None else environ
    library = allocator_to_preload(environ)
    preloaded = environ.get("LD_PRELOAD", "")
    if library is None or library in preloaded.split(":") or "jemalloc" in preloaded:
        return None
    env = {**environ, "LD_PRELOAD": ":".join(p for p in (library, preloaded) if p)}
    if "jemalloc" in Path(library).name:
        env.setdefault("MALLOC_CONF", JEMALLOC_CONF)
    return env


def reexec_with_allocator() -> None:
    """Re-run this process's own command line on the chosen allocator (same PID, same stdio), unless it already
    runs on it. Returns only when nothing changes; call it before importing torch."""
    env = allocator_environment()
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)


def allocator_in_use() -> str:
    """`jemalloc` (or the preloaded library's file name) when this process runs on one, else `glibc`."""
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "glibc"
    if "jemalloc" in maps:
        return "jemalloc"
    preloaded = [p for p in os.environ.get("LD_PRELOAD", "").split(":") if p and Path(p).name in maps]
    return Path(preloaded[0]).name if preloaded else "glibc"
