"""Relaunch `tuneforge train` under torchrun when more than one process is asked for.

We do not build an engine: torchrun starts the processes, HF Trainer (accelerate) does DDP / DeepSpeed / FSDP,
and our code is rank-aware (only rank 0 logs, plots and saves). torchrun ends every rank when one fails.
A Ray run (USE_RAY=1 or ray_num_workers > 1) starts its processes as Ray actors instead: train/ray_launch.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tuneforge.errors import UserError
from tuneforge.utils import startup_gc
from tuneforge.utils.logging import get_logger

logger = get_logger(__name__)


def in_distributed_child() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise UserError(
            f"environment variable {name}={raw!r} is not a number", fix=f"set {name} to an integer"
        ) from None


def wanted_processes(nproc: int | None) -> tuple[int, int]:
    """(processes per node, nodes) from --nproc or NPROC_PER_NODE / NNODES."""
    per_node = nproc if nproc is not None else _int_env("NPROC_PER_NODE", 1)
    nodes = _int_env("NNODES", 1)
    if per_node < 1 or nodes < 1:
        raise UserError("the number of processes and nodes must be at least 1", where="--nproc / NPROC_PER_NODE")
    return per_node, nodes


def torchrun_command(argv: list[str], per_node: int, nodes: int) -> list[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(per_node), "--nnodes", str(nodes)]
    if nodes > 1:
        cmd += [
            "--node-rank",
            os.environ.get("NODE_RANK", "0"),
            "--master-addr",
            os.environ.get("MASTER_ADDR", "127.0.0.1"),
            "--master-port",
            os.environ.get("MASTER_PORT", "29500"),
        ]
    else:
        cmd += ["--master-addr", "127.0.0.1", "--master-port", os.environ.get("MASTER_PORT", str(free_port()))]
    return cmd + ["-m", "tuneforge", "train", *argv]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def maybe_relaunch(argv: list[str], nproc: int | None, disabled: bool) -> int | None:
    """Run torchrun and return its exit code, or None when this process should train itself."""
    if disabled or in_distributed_child():
        return None
    per_node, nodes = wanted_processes(nproc)
    if per_node * nodes == 1:
        return None
    cmd = torchrun_command(argv, per_node, nodes)
    logger.info("starting %d process(es) on each of %d node(s) with torchrun", per_node, nodes)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default too; two busy processes on two cores otherwise thrash
    startup_gc.settle()  # this process trains nothing itself: collection back on while it waits
    return subprocess.call(cmd, env=env)
