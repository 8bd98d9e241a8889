"""Decide what an output_dir means before anything is written: a fresh run, a resume, or a refusal."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.utils import run_folder
from tuneforge.utils.logging import is_main_process

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

# Keys that make a run "the same run": a resume must not continue someone else's training.
IDENTITY_KEYS = ("model_name_or_path", "dataset", "stage", "finetuning_type", "template")


@dataclass
class OutputPlan:
    path: Path
    resume_from: str | None  # a checkpoint folder, or None for a fresh start
    clear_first: bool = False  # overwrite_output_dir: emptied only once data and model have loaded

    def prepare(self, cfg: RunConfig) -> None:
        """Create (or, with overwrite_output_dir, empty) the folder and write the config.yaml that made the run
        (secrets masked). Only rank 0 deletes or writes anything."""
        if self.clear_first and self.path.exists() and is_main_process():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        if is_main_process():
            data = cfg.to_dict()
            data.setdefault("output_dir", str(self.path))
            run_folder.write_config(self.path, data)


def plan_output_dir(output_dir: str, given: dict, resume_from_checkpoint: str | bool | None) -> OutputPlan:
    path = Path(output_dir)
    overwrite = bool(given.get("overwrite_output_dir"))
    explicit = resume_from_checkpoint if isinstance(resume_from_checkpoint, str) else None
    if explicit:
        if not run_folder.is_complete_checkpoint(explicit):  # the same rule as the automatic resume
            raise UserError(
                "not a complete checkpoint (no readable trainer_state.json)",
                where=f"resume_from_checkpoint ({explicit})",
                fix="point it at a checkpoint-N folder of an earlier run",
            )
        return OutputPlan(path, explicit)
    if path.exists() and not path.is_dir():
        raise UserError("output_dir is a file", where=f"output_dir ({output_dir})", fix="choose a folder path")
    if not path.exists() or not any(path.iterdir()):
        return OutputPlan(path, None)
    if overwrite:
        return OutputPlan(path, None, clear_first=True)
    previous = run_folder.read_config(path)
    same = bool(previous) and all(previous.get(k) == given.get(k) for k in IDENTITY_KEYS)
    checkpoints = run_folder.complete_checkpoints(path)
    done = run_folder.is_complete(path)
    if same and not done and checkpoints:
        return OutputPlan(path, str(checkpoints[-1]))
    if same and not done and not checkpoints:
        return OutputPlan(path, None)  # an earlier try of this run stopped before its first checkpoint
    what = "a finished run" if done else "another run" if previous else "other files"
    raise UserError(
        f"output_dir already holds {what}",
        where=f"output_dir ({output_dir})",
        fix="choose a new output_dir, or set overwrite_output_dir: true to replace it",
    )
