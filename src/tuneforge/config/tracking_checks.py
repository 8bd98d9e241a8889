"""The tracking keys' rules, checked at load: SwanLab and profiler keys only with their switch, the packages they
need, the profiler's schedule in range."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from tuneforge.config.stages import stage_record
from tuneforge.config.tracking_args import PROFILER_KEYS, SWANLAB_KEYS
from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.run_config import RunConfig

# profiler schedule key -> its least value
PROFILER_LEAST = {
    "profiler_wait_steps": 0,
    "profiler_warmup_steps": 0,
    "profiler_active_steps": 1,
    "profiler_repeat": 0,
}


def report_names(report_to) -> list[str]:
    if report_to is None:
        return []
    return [report_to] if isinstance(report_to, str) else list(report_to)


def uses_swanlab(cfg: RunConfig) -> bool:
    """use_swanlab: true, or `swanlab` among report_to (LF reads both; both mean our SwanLab callback here)."""
    return cfg.tracking.use_swanlab or "swanlab" in report_names(cfg.training.get("report_to"))


def _only_with(cfg: RunConfig, keys: tuple[str, ...], switch: str) -> None:
    for key in keys:
        if key in cfg.given:
            raise UserError(
                f"'{key}' has no effect without {switch}: true", where=cfg.where(key), fix=f"set {switch}: true"
            )


def check_tracking(cfg: RunConfig) -> None:
    tr = cfg.tracking
    stage = cfg.finetuning.stage
    if stage_record(stage).own_loop:  # e.g. train/ppo.py: no Trainer, so no callbacks to hook in
        on = {"use_swanlab": uses_swanlab(cfg), "enable_torch_profiler": tr.enable_torch_profiler}
        key = next((k for k, v in {**on, "profile_modules": tr.profile_modules}.items() if v), None)
        if key:
            raise UserError(
                f"{key} is not available with stage {stage} (its own training loop, without Trainer callbacks)",
                where=cfg.where(key),
                fix=f"remove {key}; the run's trainer_log.jsonl holds the PPO loss, reward and KL",
            )
    if not uses_swanlab(cfg):
        _only_with(cfg, SWANLAB_KEYS, "use_swanlab")
    else:
        if importlib.util.find_spec("swanlab") is None:
            raise UserError(
                "SwanLab reporting needs the swanlab package, which is not installed",
                where=cfg.where("use_swanlab"),
                fix="pip install swanlab, or remove use_swanlab",
            )
        if tr.swanlab_mode == "local" and importlib.util.find_spec("swanboard") is None:
            raise UserError(
                "swanlab_mode: local serves SwanLab's local dashboard, which needs the swanboard package",
                where=cfg.where("swanlab_mode"),
                fix="pip install 'swanlab[dashboard]', or use swanlab_mode: offline (the same run files, no dashboard)",
            )
        if tr.swanlab_lark_secret and not tr.swanlab_lark_webhook_url:
            raise UserError(
                "swanlab_lark_secret signs the Lark webhook's messages, and no webhook is set",
                where=cfg.where("swanlab_lark_secret"),
                fix="set swanlab_lark_webhook_url too, or remove swanlab_lark_secret",
            )
    if not tr.enable_torch_profiler:
        _only_with(cfg, PROFILER_KEYS, "enable_torch_profiler")
    for key, least in PROFILER_LEAST.items():
        if getattr(tr, key) < least:
            raise UserError(f"{key} must be at least {least}", where=cfg.where(key))
    if tr.profile_modules is not None and not module_patterns(tr.profile_modules):
        raise UserError(
            "profile_modules lists no module pattern",
            where=cfg.where("profile_modules"),
            fix="write name patterns like *.layers.0.self_attn,*.layers.0.mlp",
        )


def module_patterns(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]
