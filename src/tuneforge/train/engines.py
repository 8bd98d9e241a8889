"""DeepSpeed / FSDP facts that only the training process knows: how many processes there are, which device."""

from __future__ import annotations

import os

from tuneforge.errors import UserError
from tuneforge.train.launch import free_port
from tuneforge.utils.devices import has_cuda


def prepare_engines(kwargs: dict) -> None:
    """Adjust or refuse the HF training keywords for DeepSpeed and FSDP (the config was checked at load time)."""
    if kwargs.get("deepspeed"):
        single_process_group()
        if not has_cuda():
            kwargs.setdefault("ddp_backend", "gloo")  # DeepSpeed's CPU default (oneCCL) is not installed
    fsdp = kwargs.get("fsdp") not in (None, False, "", [])
    if (fsdp or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true") and world_size() < 2:
        raise UserError(
            "FSDP shards across processes, and this run has one: accelerate would train unsharded",
            where="fsdp",
            fix="start several processes (tuneforge train --nproc N, one per GPU), or remove fsdp",
        )


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def single_process_group() -> None:
    """Outside torchrun, describe a one-process group in the environment (rank 0 of 1 on this machine), so
    DeepSpeed initialises over env:// instead of trying MPI discovery (`No module named 'mpi4py'`)."""
    if "WORLD_SIZE" in os.environ and "RANK" in os.environ:
        return

    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1")):
        os.environ.setdefault(key, value)
    os.environ.setdefault("MASTER_PORT", str(free_port()))
