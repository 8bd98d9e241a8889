"""Tracking group: SwanLab reporting and the torch profiler (LLaMA-Factory's SwanLabArguments / ProfilerArguments).
train/swanlab_report.py and train/profiler.py give them effect; config/tracking_checks.py checks them at load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tuneforge.config.fields import opt

SWANLAB_KEYS = (
    "swanlab_project",
    "swanlab_workspace",
    "swanlab_run_name",
    "swanlab_mode",
    "swanlab_api_key",
    "swanlab_logdir",
    "swanlab_lark_webhook_url",
    "swanlab_lark_secret",
)
PROFILER_KEYS = (
    "profiler_output_dir",
    "profiler_wait_steps",
    "profiler_warmup_steps",
    "profiler_active_steps",
    "profiler_repeat",
    "profiler_record_shapes",
    "profiler_profile_memory",
    "profiler_with_stack",
)


@dataclass
class TrackingArguments:
    use_swanlab: bool = opt(False, "Report to SwanLab (experiment tracking; same as report_to: swanlab).")
    swanlab_project: str | None = opt("llamafactory", "SwanLab project name.")
    swanlab_workspace: str | None = opt(None, "SwanLab workspace name.")
    swanlab_run_name: str | None = opt(None, "SwanLab experiment name.")
    swanlab_mode: Literal["cloud", "local", "offline", "disabled"] = opt(
        "cloud",
        "SwanLab mode: cloud (upload; needs swanlab_api_key or `swanlab login`), offline (run files only, upload"
        " later with `swanlab sync`), local (local dashboard; needs swanboard), disabled.",
    )
    swanlab_api_key: str | None = opt(None, "SwanLab API key for cloud mode (masked in saved configs).")
    swanlab_logdir: str | None = opt(None, "SwanLab log folder (default: ./swanlog).")
    swanlab_lark_webhook_url: str | None = opt(
        None, "Lark (Feishu) webhook notified when the SwanLab run ends (masked in saved configs)."
    )
    swanlab_lark_secret: str | None = opt(None, "Lark (Feishu) signing secret for the webhook (masked).")
    enable_torch_profiler: bool = opt(False, "Record torch profiler traces (Chrome trace JSON) of training steps.")
    profiler_output_dir: str | None = opt(None, "Folder for the profiler traces (default: output_dir/profiler).")
    profiler_wait_steps: int = opt(1, "Profiler: steps skipped at the start of each cycle.")
    profiler_warmup_steps: int = opt(1, "Profiler: warm-up steps per cycle (traced, then discarded).")
    profiler_active_steps: int = opt(1, "Profiler: steps recorded per cycle.")
    profiler_repeat: int = opt(1, "Profiler: number of cycles (0: until the end).")
    profiler_record_shapes: bool = opt(True, "Profiler: record tensor shapes.")
    profiler_profile_memory: bool = opt(True, "Profiler: record memory use.")
    profiler_with_stack: bool = opt(True, "Profiler: record stack traces.")
    profile_modules: str | None = opt(
        None,
        "Time the forward and backward of the modules matching these name patterns (fnmatch, comma separated, e.g."
        " *.layers.0.self_attn): CUDA events on a GPU, wall clock on a CPU; logged at each logging step.",
    )
