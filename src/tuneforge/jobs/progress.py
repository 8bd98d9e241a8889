"""What a run has done so far, read from its files: trainer_log.jsonl (the curve) and the run's config.yaml."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

LOG_FILE = "trainer_log.jsonl"  # written by tuneforge.train.callbacks.JsonlLogCallback
CONFIG_FILE = "config.yaml"
DONE_FILE = "train_results.json"


def read_records(run_dir: str | Path) -> list[dict]:
    """The lines of trainer_log.jsonl; a line still being written (no newline yet, or cut) is skipped."""
    path = Path(run_dir) / LOG_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            records.append(row)
    return records


def read_run_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class Progress:
    step: int = 0
    total_steps: int = 0
    percentage: float = 0.0
    elapsed: float | None = None
    remaining: float | None = None
    final_loss: float | None = None
    best_loss: float | None = None
    best_eval_loss: float | None = None
    train_curve: list[tuple[int, float]] = field(default_factory=list)
    eval_curve: list[tuple[int, float]] = field(default_factory=list)


def progress(run_dir: str | Path) -> Progress:
    records = read_records(run_dir)
    out = Progress()
    for row in records:
        step = int(row.get("step") or 0)
        if row.get("loss") is not None:
            out.train_curve.append((step, float(row["loss"])))
        if row.get("eval_loss") is not None:
            out.eval_curve.append((step, float(row["eval_loss"])))
    if records:
        last = records[-1]
        out.step = int(last.get("step") or 0)
        out.total_steps = int(last.get("total_steps") or 0)
        out.percentage = float(last.get("percentage") or 0.0)
        out.elapsed = last.get("elapsed")
        out.remaining = last.get("remaining")
    if out.train_curve:
        out.final_loss = out.train_curve[-1][1]
        out.best_loss = min(v for _, v in out.train_curve)
    if out.eval_curve:
        out.best_eval_loss = min(v for _, v in out.eval_curve)
    return out


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def find_run_dirs(root: str | Path) -> list[Path]:
    """Run folders under root (a config.yaml beside a trainer_log.jsonl or an adapter/model), newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for cfg in root.glob("**/" + CONFIG_FILE):
        folder = cfg.parent
        if folder.name.startswith("checkpoint-") or ".jobs" in folder.parts:
            continue
        if any((folder / name).exists() for name in (LOG_FILE, "adapter_config.json", "config.json", DONE_FILE)):
            found.append(folder)
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
