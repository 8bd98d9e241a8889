"""DeepSpeed and FSDP settings, checked when the config loads: before torchrun starts any process.

We do not build an engine. HF Trainer (through accelerate) runs DeepSpeed from `deepspeed: path.json` and FSDP
from `fsdp` / `fsdp_config` (or from `accelerate launch --config_file examples/accelerate/fsdp_config.yaml`);
these checks turn the ways that goes wrong into one clear line each.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneforge.errors import UserError
from tuneforge.utils import devices

if TYPE_CHECKING:
    from tuneforge.config.run_config import RunConfig

DEEPSPEED_INSTALL = "pip install --no-build-isolation deepspeed (after torch)"
ZERO_STAGES = (0, 1, 2, 3)


def check_engines(cfg: RunConfig) -> None:
    tr = cfg.training
    deepspeed = tr.get("deepspeed")
    fsdp = _fsdp_enabled(tr.get("fsdp"))
    if deepspeed and fsdp:
        raise UserError(
            "DeepSpeed and FSDP cannot be used together",
            where=cfg.where("fsdp"),
            fix="keep one: deepspeed (ZeRO) or fsdp",
        )
    if deepspeed:
        load_deepspeed_config(deepspeed, cfg.where("deepspeed"))  # HF reads it again; here we prove it can
    if fsdp or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        check_fsdp(cfg.where("fsdp") if fsdp else "ACCELERATE_USE_FSDP")


def _fsdp_enabled(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "no", "none")
    if isinstance(value, (list, tuple)):
        return len(value) > 0
    return bool(value)


def load_deepspeed_config(value: Any, where: str) -> dict:
    """The DeepSpeed config as a dict: from a JSON file path or an inline mapping. Errors name file:line."""
    _needs_deepspeed(where)
    if isinstance(value, dict):
        data, source = value, where
    elif isinstance(value, str):
        path = Path(value)
        if not path.is_file():
            raise UserError(
                f"DeepSpeed config file not found: {value}",
                where=where,
                fix="point deepspeed at a JSON file, e.g. examples/deepspeed/ds_z2_config.json",
            )
        source = str(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UserError(
                f"invalid JSON in the DeepSpeed config: {exc.msg}", where=f"{path}:{exc.lineno}", fix="fix the syntax"
            ) from exc
    else:
        raise UserError(
            f"deepspeed must be a path to a JSON file, got {type(value).__name__}",
            where=where,
            fix="e.g. deepspeed: examples/deepspeed/ds_z3_config.json",
        )
    if not isinstance(data, dict):
        raise UserError("a DeepSpeed config must be a JSON object", where=source, fix="wrap the settings in { }")
    zero = data.get("zero_optimization", {})
    stage = zero.get("stage", 0) if isinstance(zero, dict) else None
    if stage not in ZERO_STAGES:
        raise UserError(
            f"zero_optimization.stage must be one of {ZERO_STAGES}, got {stage!r}",
            where=source,
            fix="use 2 or 3 (see examples/deepspeed/)",
        )
    return data


def fsdp_from_environment() -> bool:
    """`accelerate launch` with an FSDP config tells the Trainer through the environment."""
    return os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true", "yes")


def shards_weights(cfg: RunConfig) -> bool:
    """DeepSpeed ZeRO-3 or FSDP: an engine that partitions the weights (and keeps fp32 master copies of its own).
    From the run's `deepspeed` / `fsdp` keys or `accelerate launch`'s environment."""
    tr = cfg.training
    if _fsdp_enabled(tr.get("fsdp")) or fsdp_from_environment():
        return True
    if os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3":
        return True
    deepspeed = tr.get("deepspeed")
    if not deepspeed:
        return False
    zero = load_deepspeed_config(deepspeed, cfg.where("deepspeed")).get("zero_optimization", {})
    return isinstance(zero, dict) and zero.get("stage") == 3


def _needs_deepspeed(where: str) -> None:
    if importlib.util.find_spec("deepspeed") is None:
        raise UserError(
            "deepspeed is set but the deepspeed package is not installed", where=where, fix=DEEPSPEED_INSTALL
        )


def check_fsdp(where: str) -> None:
    """accelerate runs FSDP only on accelerators; on a CPU it would silently train plain DDP instead."""
    if not devices.has_cuda():
        raise UserError(
            "FSDP needs CUDA GPUs: on a CPU accelerate ignores the FSDP settings and trains plain DDP, "
            "sharding nothing",
            where=where,
            fix="on CPU, shard with DeepSpeed ZeRO-3 (deepspeed: examples/deepspeed/ds_z3_config.json) "
            "or use --nproc N alone for DDP",
        )
