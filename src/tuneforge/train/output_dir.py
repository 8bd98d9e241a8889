"""Decide what an output_dir means before anything is written: a fresh run, a resume, or a refusal."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.utils import run_folder
from tuneforge.utils.logging import get_logger, is_main_process

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

# Keys that make a run "the same run": a resume must not continue someone else's training.
IDENTITY_KEYS = ("model_name_or_path", "dataset", "stage", "finetuning_type", "template")
logger = get_logger(__name__)


@dataclass
class OutputPlan:
    path: Path
    resume_from: str | None  # a checkpoint folder, or None for a fresh start
    clear_first: bool = False  # overwrite_output_dir: earlier runs' outputs removed once data and model have loaded
    before: set[str] = field(default_factory=set)  # the folder's names when this run started: not this run's

    def prepare(self, cfg: RunConfig) -> None:
        """Create the folder (with overwrite_output_dir: remove what earlier runs wrote there, nothing else) and
        write the config.yaml that made the run (secrets masked). Only rank 0 deletes or writes anything."""
        if self.clear_first and self.path.exists() and is_main_process():
            kept = run_folder.remove_run_outputs(self.path)
            if kept:
                shown = ", ".join(kept[:5]) + (f" and {len(kept) - 5} more" if len(kept) > 5 else "")
                logger.info("overwrite_output_dir: kept what no earlier run wrote here: %s", shown)
        self.path.mkdir(parents=True, exist_ok=True)
        self.before = run_folder.entries(self.path)
        if is_main_process():
            data = cfg.to_dict()
            data.setdefault("output_dir", str(self.path))
            run_folder.write_config(self.path, data)

    def finish(self) -> None:
        """List what this run wrote, so that a later overwrite_output_dir removes exactly that (rank 0 only)."""
        if is_main_process():
            run_folder.record_outputs(self.path, self.before)


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
        if foreign := run_folder.foreign_model_files(path):
            raise UserError(
                f"output_dir holds {foreign[0]}, which no run wrote there, and saving the model would replace it",
                where=f"output_dir ({output_dir})",
                fix="move it out of the folder, or choose another output_dir",
            )
        return OutputPlan(path, None, clear_first=True)  # removes what earlier runs wrote there, nothing else
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
