"""metric: eval:<task>: each trial trains, then `tuneforge eval` scores what it trained on the benchmark as a
second job in its folder; the trial's value is that accuracy and the best trial is the most accurate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tuneforge.cli import main
from tuneforge.jobs.store import JobStore
from tuneforge.sweep import folder
from tuneforge.sweep.results import best_row, trial_rows

EVAL_DIR = Path(__file__).resolve().parents[2] / "evaluation"
SWEEP = {
    "metric": "eval:sample",
    "n_trials": 2,
    "sampler": "grid",
    "pruner": "none",
    "params": {"learning_rate": {"choices": [1.0e-7, 1.0e-2]}},
}


@pytest.mark.slow  # two trials, each a training process and an eval process
def test_trials_are_scored_by_the_benchmark(tmp_path, train_overrides, capsys):
    base = train_overrides(
        "lora", max_steps=4, plot_loss=False, output_dir=str(tmp_path / "acc"), task_dir=str(EVAL_DIR), n_shot=0
    )
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(SWEEP))
    assert main(["sweep", str(tmp_path / "cfg.yaml"), str(tmp_path / "sweep.yaml")]) == 0
    out = capsys.readouterr().out
    sweep_dir = tmp_path / "acc-sweep"
    rows = trial_rows(sweep_dir)
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE"], out
    for row in rows:
        results = json.loads((Path(row["run_dir"]) / "eval-sample" / "results.json").read_text())
        assert row["value"] == pytest.approx(results["average"])
        assert results["adapter"] == row["run_dir"] and results["task"] == "sample"
    assert best_row(rows, "maximize")["value"] == max(r["value"] for r in rows)
    evals = JobStore(folder.jobs_db(sweep_dir)).list(kind="eval")
    assert sorted(j.meta["trial"] for j in evals) == [0, 1] and {j.status for j in evals} == {"done"}
