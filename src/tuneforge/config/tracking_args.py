"""Tracking group: SwanLab reporting and the torch profiler (LLaMA-Factory's SwanLabArguments / ProfilerArguments)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tuneforge.config.fields import opt

NO_SWANLAB = ("SwanLab reporting is not wired in yet", "remove the swanlab keys; report_to: tensorboard or wandb work")
NO_PROFILER = ("the torch profiler is not wired in yet", "remove the profiler keys")


@dataclass
class TrackingArguments:
    use_swanlab: bool = opt(False, "Report to SwanLab (experiment tracking).", refused=NO_SWANLAB)
    swanlab_project: str | None = opt("llamafactory", "SwanLab project name.", refused=NO_SWANLAB)
    swanlab_workspace: str | None = opt(None, "SwanLab workspace name.", refused=NO_SWANLAB)
    swanlab_run_name: str | None = opt(None, "SwanLab experiment name.", refused=NO_SWANLAB)
    swanlab_mode: Literal["cloud", "local"] = opt("cloud", "SwanLab mode: cloud or local.", refused=NO_SWANLAB)
    swanlab_api_key: str | None = opt(None, "SwanLab API key (masked in saved configs).", refused=NO_SWANLAB)
    swanlab_logdir: str | None = opt(None, "SwanLab log folder.", refused=NO_SWANLAB)
    swanlab_lark_webhook_url: str | None = opt(None, "Lark (Feishu) webhook URL for SwanLab.", refused=NO_SWANLAB)
    swanlab_lark_secret: str | None = opt(None, "Lark (Feishu) secret for SwanLab.", refused=NO_SWANLAB)
    enable_torch_profiler: bool = opt(False, "Record torch profiler traces of training steps.", refused=NO_PROFILER)
    profiler_output_dir: str | None = opt(
        None, "Folder for the profiler traces (default: output_dir/profiler).", refused=NO_PROFILER
    )
    profiler_wait_steps: int = opt(1, "Profiler: steps skipped at the start of each cycle.", refused=NO_PROFILER)
    profiler_warmup_steps: int = opt(1, "Profiler: warm-up steps per cycle.", refused=NO_PROFILER)
    profiler_active_steps: int = opt(1, "Profiler: steps recorded per cycle.", refused=NO_PROFILER)
    profiler_repeat: int = opt(1, "Profiler: number of cycles (0: until the end).", refused=NO_PROFILER)
    profiler_record_shapes: bool = opt(True, "Profiler: record tensor shapes.", refused=NO_PROFILER)
    profiler_profile_memory: bool = opt(True, "Profiler: record memory use.", refused=NO_PROFILER)
    profiler_with_stack: bool = opt(True, "Profiler: record stack traces.", refused=NO_PROFILER)
    profile_modules: str | None = opt(
        None, "Profiler: module name patterns (fnmatch) to time with CUDA events, comma separated.", refused=NO_PROFILER
    )
