"""A 6-trial TPE sweep with a median pruner on the tiny model: real `tuneforge train` trials, one pruned for certain,
best.yaml the best row of trials.csv and a config `tuneforge train` loads."""

from __future__ import annotations

import csv

import pytest
import yaml

from tuneforge.cli import main
from tuneforge.config import load_config
from tuneforge.config.validate import check_stage
from tuneforge.sweep.results import trial_rows
from tuneforge.utils import run_folder

HOPELESS, GOOD = 1.0e-7, 1.0e-2
# Seed 0 draws (Optuna 5.1's TPE, its first 3 trials random): lr 1e-2, 1e-2, then 1e-7. With 2 trials completed
# (pruner_startup_trials 2), the 1e-7 trial's first eval loss is far above their median: pruned, not by luck.
SWEEP = {
    "metric": "eval_loss",
    "n_trials": 6,
    "sampler": "tpe",
    "seed": 0,
    "pruner": "median",
    "pruner_startup_trials": 2,
    "params": {"learning_rate": {"choices": [HOPELESS, GOOD]}, "lora_rank": {"choices": [4, 8]}},
}


@pytest.mark.slow  # six real training processes: each one's start (torch, transformers) is most of its time
def test_tpe_sweep_prunes_and_writes_the_best_config(tmp_path, train_overrides, capsys):
    base = train_overrides(
        "lora",
        val_size=2,
        per_device_train_batch_size=2,
        max_steps=6,
        logging_steps=2,
        eval_steps=2,
        plot_loss=False,
        output_dir=str(tmp_path / "lr-rank"),
    )
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(SWEEP))
    assert main(["sweep", str(tmp_path / "cfg.yaml"), str(tmp_path / "sweep.yaml")]) == 0
    out = capsys.readouterr().out
    sweep_dir = tmp_path / "lr-rank-sweep"

    rows = trial_rows(sweep_dir)
    assert [r["state"] for r in rows].count("FAIL") == 0 and len(rows) == 6, out
    first_done = [r for r in rows if r["state"] == "COMPLETE"][:2]
    assert [r["params"]["learning_rate"] for r in first_done] == [GOOD, GOOD]
    pruned = [r for r in rows if r["state"] == "PRUNED"]
    assert pruned, out
    for row in rows[2:]:  # every hopeless trial after two good ones completed was stopped at its first evaluation
        if row["params"]["learning_rate"] == HOPELESS:
            assert row["state"] == "PRUNED" and list(row["intermediate"]) == [2], row
            assert run_folder.read_pruned(row["run_dir"])["step"] == 2
            assert max(r["step"] for r in run_folder.read_records(row["run_dir"])) < 6  # stopped early

    with (sweep_dir / "trials.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [int(r["number"]) for r in table] == list(range(6))
    done = [r for r in table if r["state"] == "COMPLETE"]
    best = min(done, key=lambda r: float(r["value"]))
    best_cfg = yaml.safe_load((sweep_dir / "best.yaml").read_text())
    assert best_cfg["learning_rate"] == float(best["learning_rate"])
    assert best_cfg["lora_rank"] == int(best["lora_rank"])
    assert best_cfg["output_dir"] == str(sweep_dir / "best")
    check_stage(load_config(sweep_dir / "best.yaml"))  # what `tuneforge train best.yaml` loads first
    assert f"trial {best['number']:>3}" in out and "<- best" in out
    assert (sweep_dir / "trials" / "000" / "config.yaml").is_file() and (sweep_dir / "study.sqlite").is_file()
