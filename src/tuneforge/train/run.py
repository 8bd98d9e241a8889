"""`tuneforge train`: check the config, decide the output folder, and hand over to the stage's recipe."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.config.ray_keys import ray_requested
from tuneforge.config.stages import stage_record
from tuneforge.config.validate import check_stage
from tuneforge.errors import UserError
from tuneforge.evaluate.predict import predict_after_training, predict_only
from tuneforge.train.arguments import default_output_dir, log_precision
from tuneforge.train.launch import in_distributed_child
from tuneforge.train.output_dir import plan_output_dir
from tuneforge.utils.imports import WHILE_LIBRARIES_IMPORT, release

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig


def predicts_only(cfg: RunConfig) -> bool:
    """LLaMA-Factory's predict config: do_predict with do_train false, or with neither do_train nor a training
    dataset (Hugging Face's do_train defaults to false; ours to true, so that a plain config trains)."""
    if not cfg.training.get("do_predict"):
        return False
    return not cfg.training.get("do_train", True) or ("do_train" not in cfg.given and not cfg.data.dataset)


def run_training(cfg: RunConfig) -> Path:
    if ray_requested(cfg) and not in_distributed_child():  # a Ray worker runs this with its rank in the environment
        raise UserError(
            "this config asks for Ray workers (ray_num_workers > 1 or USE_RAY=1); one process would ignore that",
            where=cfg.where("ray_num_workers"),
            fix="run it with tuneforge train, or call tuneforge.train.ray_launch.run_on_ray(cfg)",
        )
    if predicts_only(cfg):
        release(WHILE_LIBRARIES_IMPORT)
        return predict_only(cfg)
    check_stage(cfg)
    output_dir = cfg.training.get("output_dir") or default_output_dir(cfg)
    cfg.training["output_dir"] = output_dir
    plan = plan_output_dir(output_dir, cfg.given, cfg.training.get("resume_from_checkpoint"))
    log_precision(cfg)  # compute_type auto: what this machine trains in, and why
    # one recipe module per stage, named by its record (check_stage allowed only those); only that one is imported
    recipe = importlib.import_module(stage_record(cfg.finetuning.stage).recipe)
    release(WHILE_LIBRARIES_IMPORT)  # the CLI held them back while transformers imported (utils/imports.py)
    try:
        out = recipe.run(cfg, plan)
        if cfg.training.get("do_predict"):
            predict_after_training(cfg, out)
        return out
    finally:
        _end_process_group()


def _end_process_group() -> None:
    """Under torchrun, leave cleanly: every rank destroys the process group it joined."""
    import torch.distributed as dist  # torch: `import tuneforge.train.run` (the CLI) stays light

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
