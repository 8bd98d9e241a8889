"""What a run has done so far, read from its files (utils/run_folder.py): the curve, the step, the time left."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tuneforge.utils.run_folder import read_records


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
