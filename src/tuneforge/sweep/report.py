"""A sweep's results: the table printed after each trial and at the end, trials.csv, best.yaml (the base config with
the best trial's parameters, runnable with `tuneforge train`) and importances.json."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tuneforge.config.run_config import mask_secrets
from tuneforge.sweep import folder
from tuneforge.sweep.results import best_row
from tuneforge.utils.logging import get_logger

logger = get_logger(__name__)
MIN_TRIALS_FOR_IMPORTANCE = 4  # completed trials; and at least two parameters


def _number(value) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def format_row(row: dict, metric: str) -> str:
    """One line of the table: number, state, metric, duration, parameters."""
    params = " ".join(f"{k}={_number(v)}" for k, v in row["params"].items())
    duration = "-" if row["duration_s"] is None else f"{row['duration_s']:.1f}s"
    return f"trial {row['number']:>3}  {row['state']:<8}  {metric}={_number(row['value']):<10}  {duration:>8}  {params}"


def format_table(rows: list[dict], metric: str, direction: str) -> str:
    best = best_row(rows, direction)
    lines = [format_row(row, metric) + ("   <- best" if best and row is best else "") for row in rows]
    return "\n".join(lines)


def write_trials_csv(sweep_dir: str | Path, rows: list[dict]) -> Path:
    keys = list(dict.fromkeys(k for row in rows for k in row["params"]))
    path = Path(sweep_dir) / folder.TRIALS_CSV
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["number", "state", "value", "duration_s", *keys])
        for row in rows:
            values = [row["number"], row["state"], row["value"], row["duration_s"]]
            writer.writerow(["" if v is None else v for v in values + [row["params"].get(k) for k in keys]])
    return path


def best_config(sweep_dir: str | Path, base: dict, best: dict) -> dict:
    """The base config with the best trial's parameters, training into `<sweep>/best`."""
    return mask_secrets({**base, **best["params"], "output_dir": str(Path(sweep_dir) / folder.BEST_RUN_DIR)})


def write_importances(sweep_dir: str | Path, study, rows: list[dict]) -> dict | None:
    """Optuna's PED-ANOVA importances (no scikit-learn), once ≥ 2 parameters and ≥ 4 completed trials."""
    keys = {k for row in rows for k in row["params"]}
    done = [row for row in rows if row["state"] == "COMPLETE"]
    if len(keys) < 2 or len(done) < MIN_TRIALS_FOR_IMPORTANCE:
        return None
    import optuna  # the driver has it loaded already

    try:
        importances = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
        )
    except (ValueError, RuntimeError) as exc:  # e.g. a parameter that never varied: the results stand without it
        logger.warning("no parameter importances: %s", exc)
        return None
    path = Path(sweep_dir) / folder.IMPORTANCES_FILE
    path.write_text(json.dumps(importances, indent=2), encoding="utf-8")
    return importances


def write_results(sweep_dir: str | Path, study, rows: list[dict], base: dict, direction: str) -> dict | None:
    """trials.csv, best.yaml and importances.json; the best row (None when no trial completed)."""
    write_trials_csv(sweep_dir, rows)
    best = best_row(rows, direction)
    if best is not None:
        folder.write_yaml(Path(sweep_dir) / folder.BEST_FILE, best_config(sweep_dir, base, best))
    write_importances(sweep_dir, study, rows)
    return best
