"""Ray keys (LLaMA-Factory's RayArguments), checked when the config loads: before any process or Ray cluster starts.

A run goes to Ray when USE_RAY=1 (LF's switch) or ray_num_workers > 1 (LF ignores the key without USE_RAY; we do not
accept a key and ignore it). ray_init_kwargs, master_addr and master_port only mean something to a Ray run.
"""

from __future__ import annotations

import importlib.util
import json
import os
from typing import TYPE_CHECKING, Any

from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.run_config import RunConfig

RAY_INSTALL = "pip install 'ray[train]'"
RAY_ONLY_KEYS = ("ray_init_kwargs", "master_addr", "master_port")


def use_ray_env() -> bool:
    """LF's `USE_RAY` switch (extras/misc.py is_env_enabled: true / y / 1)."""
    return os.environ.get("USE_RAY", "0").lower() in ("true", "y", "1")


def ray_requested(cfg: RunConfig) -> bool:
    return use_ray_env() or cfg.platform.ray_num_workers > 1


def ray_init_kwargs(cfg: RunConfig) -> dict[str, Any]:
    """ray.init's keywords: a mapping, or a JSON object as a string (as LF reads it)."""
    value = cfg.platform.ray_init_kwargs
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise UserError(
                f"ray_init_kwargs is not valid JSON ({exc})",
                where=cfg.where("ray_init_kwargs"),
                fix='write a mapping, e.g. ray_init_kwargs: {"num_cpus": 4}',
            ) from None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise UserError(
            "ray_init_kwargs must be a mapping of ray.init keyword arguments",
            where=cfg.where("ray_init_kwargs"),
            fix='write a mapping, e.g. ray_init_kwargs: {"num_cpus": 4}',
        )
    return value


def check_ray(cfg: RunConfig) -> None:
    p = cfg.platform
    if p.ray_num_workers < 1:
        raise UserError(
            "ray_num_workers must be at least 1", where=cfg.where("ray_num_workers"), fix="set it to 1 or more"
        )
    if not ray_requested(cfg):
        for key in RAY_ONLY_KEYS:
            if key in cfg.given and getattr(p, key) is not None:
                raise UserError(
                    f"'{key}' only applies to a Ray run, and this run does not use Ray",
                    where=cfg.where(key),
                    fix="set ray_num_workers: N (N > 1) or USE_RAY=1, or remove it "
                    "(torchrun reads MASTER_ADDR / MASTER_PORT from the environment)",
                )
        return
    ray_init_kwargs(cfg)
    if p.master_port is not None and not (str(p.master_port).isdigit() and 0 < int(p.master_port) < 65536):
        raise UserError(
            f"master_port {p.master_port!r} is not a port number", where=cfg.where("master_port"), fix="use 1-65535"
        )
    if importlib.util.find_spec("ray") is None:
        where = cfg.where("ray_num_workers") if p.ray_num_workers > 1 else "USE_RAY=1"
        raise UserError("Ray training needs the 'ray' package, which is not installed", where=where, fix=RAY_INSTALL)
