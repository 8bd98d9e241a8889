"""Decide what an output_dir means before anything is written: a fresh run, a resume, or a refusal."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from tuneforge.errors import UserError
from tuneforge.utils.logging import is_main_process

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

CONFIG_FILE = "config.yaml"
DONE_FILE = "train_results.json"  # written by the trainer when a run completes
# Keys that make a run "the same run": a resume must not continue someone else's training.
IDENTITY_KEYS = ("model_name_or_path", "dataset", "stage", "finetuning_type", "template")
_CKPT = re.compile(r"^checkpoint-(\d+)$")


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
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
            (self.path / CONFIG_FILE).write_text(text, encoding="utf-8")


def complete_checkpoints(path: Path) -> list[Path]:
    """Checkpoint folders that finished writing, oldest first: every stage (the Trainer's and our PPO loop) writes
    `tmp-checkpoint-N` with trainer_state.json last and renames it, so only `checkpoint-N` with a readable state
    counts."""
    found = []
    for child in path.glob("checkpoint-*"):
        match = _CKPT.match(child.name)
        if match and child.is_dir() and _readable_state(child / "trainer_state.json"):
            found.append((int(match.group(1)), child))
    return [p for _, p in sorted(found)]


def _readable_state(file: Path) -> bool:
    """trainer_state.json exists and parses: a checkpoint cut off while writing it is not complete."""
    import json

    try:
        return isinstance(json.loads(file.read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        return False


def plan_output_dir(output_dir: str, given: dict, resume_from_checkpoint: str | bool | None) -> OutputPlan:
    path = Path(output_dir)
    overwrite = bool(given.get("overwrite_output_dir"))
    explicit = resume_from_checkpoint if isinstance(resume_from_checkpoint, str) else None
    if explicit:
        if not _readable_state(Path(explicit) / "trainer_state.json"):  # the same rule as the automatic resume
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
    previous = _read_config(path)
    same = previous is not None and all(previous.get(k) == given.get(k) for k in IDENTITY_KEYS)
    checkpoints = complete_checkpoints(path)
    if same and not (path / DONE_FILE).is_file() and checkpoints:
        return OutputPlan(path, str(checkpoints[-1]))
    if same and not (path / DONE_FILE).is_file() and previous is not None and not checkpoints:
        return OutputPlan(path, None)  # an earlier try of this run stopped before its first checkpoint
    what = "a finished run" if (path / DONE_FILE).is_file() else "another run" if previous else "other files"
    raise UserError(
        f"output_dir already holds {what}",
        where=f"output_dir ({output_dir})",
        fix="choose a new output_dir, or set overwrite_output_dir: true to replace it",
    )


def _read_config(path: Path) -> dict | None:
    file = path / CONFIG_FILE
    if not file.is_file():
        return None
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None
