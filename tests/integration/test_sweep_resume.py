"""A sweep killed (driver and trial process, as a machine crash would) while its third trial runs, then run again
with the same command: 6 finished trials, the first two not re-run, the cut-off trial marked FAIL and re-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tuneforge.cli import main
from tuneforge.jobs import runner
from tuneforge.jobs.store import JobStore
from tuneforge.sweep import folder
from tuneforge.sweep.results import trial_rows
from tuneforge.utils import run_folder

SWEEP = {
    "metric": "train_loss",
    "n_trials": 6,
    "sampler": "random",
    "seed": 1,
    "pruner": "none",
    "params": {"learning_rate": {"low": 1.0e-3, "high": 3.0e-2, "log": True}, "lora_rank": {"choices": [4, 8]}},
}


def trial_jobs(store: JobStore) -> dict[int, list]:
    jobs: dict[int, list] = {}
    for job in store.list(kind="train"):
        jobs.setdefault(job.meta["trial"], []).append(job)
    return jobs


def wait_for_trial_running(store_path, number: int, driver: subprocess.Popen, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert driver.poll() is None, "the sweep ended before its trial ran"
        if store_path.is_file():
            jobs = trial_jobs(JobStore(store_path)).get(number, [])
            if jobs and runner.is_alive(jobs[-1].pid, jobs[-1].pid_started):
                return jobs[-1]
        time.sleep(0.1)
    raise AssertionError(f"trial {number} never started")


@pytest.mark.slow
def test_a_killed_sweep_continues_without_repeating_finished_trials(tmp_path, train_overrides, capsys):
    base = train_overrides("lora", max_steps=4, logging_steps=1, plot_loss=False, output_dir=str(tmp_path / "lr"))
    cfg, spec = tmp_path / "cfg.yaml", tmp_path / "sweep.yaml"
    cfg.write_text(yaml.safe_dump(base))
    spec.write_text(yaml.safe_dump(SWEEP))
    sweep_dir = tmp_path / "lr-sweep"
    store_path = folder.jobs_db(sweep_dir)

    log = (tmp_path / "driver.log").open("w")
    driver = subprocess.Popen(
        [sys.executable, "-m", "tuneforge", "sweep", str(cfg), str(spec)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        cut_off = wait_for_trial_running(store_path, 2, driver)
    finally:  # the crash: nothing gets to clean up, the trial's training dies mid-run
        driver.kill()
        driver.wait(timeout=30)
    os.kill(cut_off.pid, signal.SIGKILL)
    while runner.is_alive(cut_off.pid, cut_off.pid_started):
        time.sleep(0.05)
    assert not run_folder.is_complete(folder.trial_dir(sweep_dir, 2))
    finished = {n: run_folder.done_path(folder.trial_dir(sweep_dir, n)).stat().st_mtime_ns for n in (0, 1)}
    before = trial_rows(sweep_dir)
    assert [r["state"] for r in before] == ["COMPLETE", "COMPLETE", "RUNNING"]

    assert main(["sweep", str(cfg), str(spec)]) == 0  # the same command again
    out = capsys.readouterr().out
    rows = trial_rows(sweep_dir)
    states = [r["state"] for r in rows]
    assert states.count("COMPLETE") == 6 and states[2] == "FAIL" and len(rows) == 7, out
    assert "cut off" in out
    assert rows[3]["params"] == before[2]["params"]  # the cut-off trial's parameters ran again, in a new folder
    assert rows[3]["run_dir"] == str(folder.trial_dir(sweep_dir, 3))
    assert [r["params"] for r in rows[:2]] == [r["params"] for r in before[:2]]
    jobs = trial_jobs(JobStore(store_path))
    assert {n: len(jobs[n]) for n in (0, 1)} == {0: 1, 1: 1}  # the finished trials were not trained again
    assert {n: run_folder.done_path(folder.trial_dir(sweep_dir, n)).stat().st_mtime_ns for n in (0, 1)} == finished
    assert sorted(jobs) == list(range(7))
