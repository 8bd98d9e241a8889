"""The metric a finished trial scored, read from its run folder (utils/run_folder.py names the files)."""

from __future__ import annotations

from pathlib import Path

from tuneforge.utils import run_folder


def read_metric(run_dir: str | Path, metric: str) -> float | None:
    """eval_loss / eval_accuracy: the final evaluation (eval_results.json, else the last logged one); train_loss:
    the last logged training loss (the curve's end, not the run's average). None when the run holds none."""
    if metric == "train_loss":
        return _last_logged(run_dir, "loss")
    value = run_folder.read_metrics(run_dir, "eval").get(metric)
    return float(value) if value is not None else _last_logged(run_dir, metric)


def _last_logged(run_dir: str | Path, key: str) -> float | None:
    values = [record[key] for record in run_folder.read_records(run_dir) if record.get(key) is not None]
    return float(values[-1]) if values else None
