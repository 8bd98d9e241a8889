"""The sweep driver's bookkeeping, fast: trials are a stand-in train command (writes a loss, or fails, or waits), so
the interruption, the resume and the failure rule are tested in seconds. The real trainer: tests/integration."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import threading
import time

import pytest
import yaml

from tuneforge.cli import main
from tuneforge.jobs import runner
from tuneforge.jobs.store import ABORTED, JobStore
from tuneforge.sweep import folder
from tuneforge.sweep.results import trial_rows

# A stand-in for `tuneforge train config.yaml`: logs loss = learning_rate and finishes; the trial named in
# SLOW_TRIAL waits first (long enough to be interrupted), FAIL=1 exits 1 like a broken config.
FAKE_TRAIN = textwrap.dedent(
    """
    import json, os, pathlib, sys, time, yaml
    cfg = yaml.safe_load(open(sys.argv[1]))
    out = pathlib.Path(cfg["output_dir"])
    if os.environ.get("FAIL") == "1":
        sys.exit(1)
    if os.environ["TUNEFORGE_SWEEP_TRIAL"] == os.environ.get("SLOW_TRIAL"):
        time.sleep(60)
    (out / "trainer_log.jsonl").write_text(json.dumps({"step": 1, "loss": cfg["learning_rate"]}) + "\\n")
    (out / "train_results.json").write_text("{}")
    """
)
BASE = {"model_name_or_path": "models/tiny", "dataset": "identity", "template": "chatml", "output_dir": "saves/x"}
SWEEP = {
    "metric": "train_loss",
    "n_trials": 3,
    "sampler": "random",
    "seed": 0,
    "pruner": "none",
    "params": {"learning_rate": {"low": 1.0e-4, "high": 1.0e-2, "log": True}},
}


@pytest.fixture
def sweep_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    real = runner.job_command
    monkeypatch.setattr(
        runner,
        "job_command",
        lambda job: [sys.executable, "-c", FAKE_TRAIN, job.config_path] if job.kind == "train" else real(job),
    )
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(SWEEP))
    return ["sweep", "cfg.yaml", "sweep.yaml"], tmp_path / "saves" / "x-sweep"


def test_sigterm_stops_the_trial_tells_nothing_and_the_same_command_continues(sweep_files, monkeypatch, capsys):
    argv, sweep_dir = sweep_files
    monkeypatch.setenv("SLOW_TRIAL", "1")

    def interrupt_when_trial_1_runs():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if folder.jobs_db(sweep_dir).is_file():
                jobs = [j for j in JobStore(folder.jobs_db(sweep_dir)).list(kind="train") if j.meta["trial"] == 1]
                if jobs and jobs[0].pid:
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
            time.sleep(0.05)

    threading.Thread(target=interrupt_when_trial_1_runs, daemon=True).start()
    assert main(argv) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Run the same command to continue" in err, err
    (aborted,) = [j for j in JobStore(folder.jobs_db(sweep_dir)).list(kind="train") if j.meta["trial"] == 1]
    assert aborted.status == ABORTED and not runner.is_alive(aborted.pid, aborted.pid_started)
    assert [r["state"] for r in trial_rows(sweep_dir)] == ["COMPLETE", "RUNNING"]  # told nothing

    monkeypatch.delenv("SLOW_TRIAL")
    assert main(argv) == 0
    rows = trial_rows(sweep_dir)
    assert [r["state"] for r in rows] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert rows[2]["params"] == rows[1]["params"]  # the stopped trial runs again, as a new trial
    assert rows[3]["params"] != rows[0]["params"]  # the continued sampler draws anew, not trial 0's draw again
    assert rows[0]["value"] == pytest.approx(rows[0]["params"]["learning_rate"])
    assert (sweep_dir / "trials.csv").is_file() and (sweep_dir / "best.yaml").is_file()
    assert not (sweep_dir / "importances.json").exists()  # one parameter: nothing to rank


def test_three_failed_trials_in_a_row_stop_the_sweep_in_one_line(sweep_files, monkeypatch, capsys):
    argv, sweep_dir = sweep_files
    monkeypatch.setenv("FAIL", "1")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "3 trials in a row failed" in err, err
    assert [r["state"] for r in trial_rows(sweep_dir)] == ["FAIL"] * 3


def test_continuing_a_sweep_with_another_space_is_refused(sweep_files, capsys):
    argv, sweep_dir = sweep_files
    assert main(argv) == 0
    changed = {**SWEEP, "params": {"learning_rate": {"low": 1.0e-5, "high": 1.0e-2, "log": True}}}
    (sweep_dir.parents[1] / "sweep.yaml").write_text(yaml.safe_dump(changed))
    assert main(argv) == 2
    assert "another params" in capsys.readouterr().err
    assert main(["sweep", "cfg.yaml", str(sweep_dir / "sweep.yaml")]) == 0  # its own spec: already finished
    assert len(trial_rows(sweep_dir)) == 3


def test_the_grid_sampler_runs_each_point_once(sweep_files, capsys):
    argv, sweep_dir = sweep_files
    grid = {**SWEEP, "sampler": "grid", "n_trials": 3, "params": {"learning_rate": {"choices": [1e-3, 2e-3, 3e-3]}}}
    (sweep_dir.parents[1] / "sweep.yaml").write_text(yaml.safe_dump(grid))
    assert main(argv) == 0, capsys.readouterr().err
    rows = trial_rows(sweep_dir)
    assert [r["state"] for r in rows] == ["COMPLETE"] * 3
    assert sorted(r["params"]["learning_rate"] for r in rows) == [1e-3, 2e-3, 3e-3]


def test_importances_rank_the_parameters_once_enough_trials_completed(sweep_files, capsys):
    argv, sweep_dir = sweep_files
    two = {**SWEEP, "n_trials": 5, "params": {**SWEEP["params"], "lora_rank": {"choices": [4, 8]}}}
    (sweep_dir.parents[1] / "sweep.yaml").write_text(yaml.safe_dump(two))
    assert main(argv) == 0, capsys.readouterr().err
    importances = json.loads((sweep_dir / "importances.json").read_text())
    assert set(importances) == {"learning_rate", "lora_rank"}  # the loss is the learning rate: it matters most
    assert importances["learning_rate"] > importances["lora_rank"]
    header = (sweep_dir / "trials.csv").read_text().splitlines()[0]
    assert header == "number,state,value,duration_s,learning_rate,lora_rank"
