"""Run `tuneforge train` on Ray workers when USE_RAY=1 or ray_num_workers > 1, as LLaMA-Factory 0.9.5 does.

LF 0.9.5 (train/tuner.py `_ray_training_function`) no longer goes through Ray Train's TorchTrainer: it reserves one
bundle per worker in a placement group, starts one Ray actor per bundle with the torch.distributed environment
(RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and runs its ordinary training function there; HF Trainer (accelerate)
then opens the process group from that environment exactly as under torchrun. We do the same, so `master_addr` and
`master_port` mean what they mean in LF: the rendezvous of the process group, on a node of the Ray cluster (rank 0
is placed there; default: the head node) and a port there (default: a free one). Each worker runs our normal
`run_training`, rank-aware as under torchrun: only rank 0 logs and saves. Ray is started locally by default
(`ray.init(**ray_init_kwargs)`) and shut down at the end; an existing cluster is used and left running.
"""

from __future__ import annotations

import logging
import math
import os
from typing import TYPE_CHECKING

from tuneforge.config.ray_keys import RAY_INSTALL, ray_init_kwargs
from tuneforge.errors import UserError
from tuneforge.train.launch import free_port, in_distributed_child, wanted_processes
from tuneforge.train.run import run_training
from tuneforge.utils import devices
from tuneforge.utils.logging import configure_output, get_logger, quiet_libraries

if TYPE_CHECKING:
    from tuneforge.config.run_config import RunConfig

logger = get_logger(__name__)
READY_TIMEOUT_S = 300  # a placement group the cluster cannot hold never becomes ready: say so instead of hanging
NOT_PASSED_ON = ("CUDA_VISIBLE_DEVICES",)  # Ray gives each GPU worker its own


class TrainingWorker:
    """One Ray actor: one rank of the run, in its own process."""

    def train(self, cfg: RunConfig, cwd: str) -> str:
        os.chdir(cwd)  # relative paths in the config mean the driver's folder, as under torchrun
        configure_output()
        quiet_libraries()
        return str(run_training(cfg))


def run_on_ray(cfg: RunConfig, nproc: int | None = None) -> int:
    """Train on cfg.platform.ray_num_workers Ray workers; 0 when all of them finished. `nproc`: `--nproc`."""
    torchrun = int(os.environ.get("WORLD_SIZE", "1")) if in_distributed_child() else math.prod(wanted_processes(nproc))
    if torchrun > 1:
        raise UserError(
            "Ray and torchrun both start the training processes; this run asks for both",
            where=cfg.where("ray_num_workers"),
            fix="use ray_num_workers / USE_RAY=1, or --nproc / NPROC_PER_NODE / torchrun, not both",
        )
    try:
        import ray  # late: an optional package that only Ray runs need
    except ImportError:
        raise UserError("Ray training needs the 'ray' package", where="ray_num_workers", fix=RAY_INSTALL) from None

    started = not ray.is_initialized()
    if started:
        init_kwargs = dict(ray_init_kwargs(cfg))
        _check_local_cpus(cfg, init_kwargs)
        logger.info("starting Ray (ray.init%s)", f" with {init_kwargs}" if cfg.platform.ray_init_kwargs else "")
        init_kwargs.setdefault("logging_level", logging.ERROR)  # Ray's start-up notices are not our run's lines
        ray.init(**init_kwargs)
    try:
        return _train_on_workers(ray, cfg)
    finally:
        if started:
            ray.shutdown()  # stops the local cluster this run started: no process stays behind


def _check_local_cpus(cfg: RunConfig, init_kwargs: dict) -> None:
    """A local Ray on a machine without CUDA has one worker per CPU: refuse more before starting it."""
    if "address" in init_kwargs or os.environ.get("RAY_ADDRESS") or devices.has_cuda():
        return  # an existing cluster or GPUs: counted once Ray is up
    cpus = int(init_kwargs.get("num_cpus") or os.cpu_count() or 1)
    workers = cfg.platform.ray_num_workers
    if workers > cpus:
        raise UserError(
            f"ray_num_workers is {workers}, and this machine has {cpus} CPU(s) for a local Ray (one worker each)",
            where=cfg.where("ray_num_workers"),
            fix=f"use at most {cpus} workers, or connect to a cluster (ray_init_kwargs: {{address: ...}})",
        )


def _train_on_workers(ray, cfg: RunConfig) -> int:
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    workers = cfg.platform.ray_num_workers
    use_gpu = ray.cluster_resources().get("GPU", 0) > 0
    device = "GPU" if use_gpu else "CPU"
    available = int(ray.cluster_resources().get(device, 0))
    if workers > available:
        raise UserError(
            f"ray_num_workers is {workers}, and the Ray cluster has {available} {device}(s)",
            where=cfg.where("ray_num_workers"),
            fix=f"use at most {available} workers, or give Ray more (ray_init_kwargs: num_cpus / num_gpus)",
        )
    master_addr = _master_addr(ray, cfg)
    master_port = str(cfg.platform.master_port or free_port())
    bundle = {"CPU": 1, "GPU": 1} if use_gpu else {"CPU": 1}
    group = placement_group([bundle] * workers, strategy="PACK")
    actors = []
    try:
        try:
            ray.get(group.ready(), timeout=READY_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise UserError(
                f"Ray could not reserve {workers} x {bundle} in {READY_TIMEOUT_S} s",
                where=cfg.where("ray_num_workers"),
                fix="use fewer workers, or give Ray more resources",
            ) from None
        placed = _ranked_bundles(ray, group, master_addr)
        logger.info("training on %d Ray worker(s) (%s each), master %s:%s", workers, bundle, master_addr, master_port)
        remote_worker = ray.remote(TrainingWorker)
        for rank, (index, local_rank, local_size) in enumerate(placed):
            env = _worker_env(rank, workers, 0 if use_gpu else local_rank, local_size, master_addr, master_port)
            strategy = PlacementGroupSchedulingStrategy(placement_group=group, placement_group_bundle_index=index)
            options = {"num_cpus": 1, "num_gpus": 1 if use_gpu else 0, "scheduling_strategy": strategy}
            actors.append(remote_worker.options(**options, runtime_env={"env_vars": env}).remote())
        outputs = _wait_all(ray, [actor.train.remote(cfg, os.getcwd()) for actor in actors])
    finally:
        for actor in actors:
            ray.kill(actor)  # a failed rank leaves the others waiting in a collective: end them all
        remove_placement_group(group)
    print(f"Done. Saved to {outputs[0]}")
    return 0


def _master_addr(ray, cfg: RunConfig) -> str:
    """The given master_addr, which must be an alive node of the cluster, or the head node's address (LF)."""
    nodes = [node for node in ray.nodes() if node["Alive"]]
    given = cfg.platform.master_addr
    if given is None:
        return next(n["NodeManagerAddress"] for n in nodes if "node:__internal_head__" in n["Resources"])
    addresses = [n["NodeManagerAddress"] for n in nodes]
    if given not in addresses:
        raise UserError(
            f"master_addr {given} is not an alive node of the Ray cluster",
            where=cfg.where("master_addr"),
            fix=f"use one of: {', '.join(addresses)}, or remove it (the head node)",
        )
    return given


def _ranked_bundles(ray, group, master_addr: str) -> list[tuple[int, int, int]]:
    """(bundle index, local rank, workers on that node) in rank order: bundles sorted by node address, those on
    master_addr first (rank 0 must run where the process group's master listens), as LF sorts them."""
    from ray.util.placement_group import placement_group_table

    address_of = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes()}
    node_of = placement_group_table(group)["bundles_to_node_id"]
    addresses = {index: address_of[node_of[index]] for index in node_of}
    order = sorted(addresses, key=lambda i: (addresses[i] != master_addr, addresses[i], i))
    ranked = []
    for index in order:
        same_node = [i for i in order if addresses[i] == addresses[index]]
        ranked.append((index, same_node.index(index), len(same_node)))
    return ranked


def _worker_env(rank: int, world: int, local_rank: int, local_size: int, addr: str, port: str) -> dict[str, str]:
    """The driver's environment (LF passes it on too: HF_HOME, offline switches ...) and the process group's."""
    env = {key: value for key, value in os.environ.items() if key not in NOT_PASSED_ON}
    env.setdefault("OMP_NUM_THREADS", "1")  # one CPU per worker, as torchrun's default
    env.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(local_rank),  # GPU workers see one GPU each (Ray sets CUDA_VISIBLE_DEVICES): 0, as in LF
        LOCAL_WORLD_SIZE=str(local_size),
        MASTER_ADDR=addr,
        MASTER_PORT=port,
        TORCHELASTIC_USE_AGENT_STORE="False",
    )
    return env


def _wait_all(ray, refs: list) -> list[str]:
    """Each worker's result; the first failure is raised as soon as it happens (a UserError as itself)."""
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        try:
            ray.get(done[0])
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, UserError):
                raise exc.cause from None
            raise
    return ray.get(refs)
