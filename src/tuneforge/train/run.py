"""`tuneforge train`: check the config, decide the output folder, and hand over to the stage's recipe."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.config.validate import check_stage
from tuneforge.train.arguments import default_output_dir
from tuneforge.train.output_dir import plan_output_dir

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig


def run_training(cfg: RunConfig) -> Path:
    check_stage(cfg)
    output_dir = cfg.training.get("output_dir") or default_output_dir(cfg)
    cfg.training["output_dir"] = output_dir
    plan = plan_output_dir(output_dir, cfg.given, cfg.training.get("resume_from_checkpoint"))
    from tuneforge.train import sft

    recipes = {"sft": sft.run}
    try:
        return recipes[cfg.finetuning.stage](cfg, plan)
    finally:
        _end_process_group()


def _end_process_group() -> None:
    """Under torchrun, leave cleanly: every rank destroys the process group it joined."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
