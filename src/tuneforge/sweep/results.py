"""A sweep's trials as plain rows, read from its stored study: what the CLI table, the files and the Web UI show."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from tuneforge.sweep import folder
from tuneforge.sweep.study import load_stored_study

FINISHED = ("COMPLETE", "PRUNED")  # the trials a sweep counts toward n_trials


def trial_rows(sweep_dir: str | Path) -> list[dict]:
    """One row per trial, by number: {"number", "state" (COMPLETE | PRUNED | RUNNING | FAIL | WAITING), "params",
    "value" (the metric; a pruned trial's last reported value), "duration_s", "run_dir", "intermediate" ({step:
    value})}; [] while the study does not exist yet."""
    study = load_stored_study(sweep_dir)
    if study is None:
        return []
    return [row_of(trial, sweep_dir) for trial in study.get_trials(deepcopy=False)]


def row_of(trial, sweep_dir: str | Path) -> dict:
    """The row of one Optuna FrozenTrial."""
    start, end = trial.datetime_start, trial.datetime_complete
    duration = None
    if start is not None:
        duration = round(((end or datetime.now()) - start).total_seconds(), 2)
    return {
        "number": trial.number,
        "state": trial.state.name,
        "params": dict(trial.params),
        "value": trial.value if trial.values else None,
        "duration_s": duration,
        "run_dir": trial.user_attrs.get("run_dir") or str(folder.trial_dir(sweep_dir, trial.number)),
        "intermediate": {int(step): value for step, value in sorted(trial.intermediate_values.items())},
    }


def best_row(rows: list[dict], direction: str) -> dict | None:
    """The completed trial with the best metric (the first of equals); None when no trial completed."""
    done = [row for row in rows if row["state"] == "COMPLETE" and row["value"] is not None]
    if not done:
        return None
    if direction == "minimize":
        return min(done, key=lambda row: (row["value"], row["number"]))
    return max(done, key=lambda row: (row["value"], -row["number"]))


def finished_count(rows: list[dict]) -> int:
    return sum(row["state"] in FINISHED for row in rows)
