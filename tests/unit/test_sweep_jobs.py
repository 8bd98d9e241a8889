"""A sweep job in the queue: its command, its trials' environment, and the rule that a driver takes no slot."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
import yaml

from tuneforge.errors import UserError
from tuneforge.jobs import runner
from tuneforge.jobs.scheduler import Scheduler
from tuneforge.jobs.store import DONE, QUEUED, RUNNING, JobStore
from tuneforge.sweep.spec import load_sweep_spec
from tuneforge.sweep.submit import submit_sweep

SLEEP_AND_ENV = textwrap.dedent(
    """
    import json, os, sys, time
    time.sleep(float(sys.argv[1]))
    print(json.dumps({k: v for k, v in os.environ.items() if k.startswith("TUNEFORGE_SWEEP_")}), flush=True)
    """
)


def test_the_sweep_command_names_its_base_config_and_store(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite")
    meta = {"base_config": "/s/config.yaml", "jobs_db": "/s/jobs.sqlite"}
    job = store.add("sweep", "/s", "/s/sweep.yaml", "/s/sweep.log", tmp_path, meta)
    assert runner.job_command(job) == [
        sys.executable,
        *("-m", "tuneforge", "sweep", "/s/config.yaml", "/s/sweep.yaml", "--jobs-db", "/s/jobs.sqlite"),
    ]


def test_a_sweep_driver_takes_no_slot_and_its_trial_gets_its_env(tmp_path, monkeypatch):
    """max_running=1: a running sweep does not hold back its own trial (a train job), and a sweep queued behind a
    running train job starts at once; the trial's process sees meta["env"]."""
    seconds = {"sweep": "1.5", "train": "0.3"}
    monkeypatch.setattr(runner, "job_command", lambda job: [sys.executable, "-c", SLEEP_AND_ENV, seconds[job.kind]])
    scheduler = Scheduler(JobStore(tmp_path / "jobs.sqlite"), max_running=1)

    def submit(kind, name, meta=None):
        run = tmp_path / name
        return scheduler.submit(kind, run, run / "cfg.yaml", run / "out.log", tmp_path, meta)

    first_train = submit("train", "t0")
    sweep = submit("sweep", "s")
    assert (scheduler.store.get(first_train.id).status, sweep.status) == (RUNNING, RUNNING)
    trial = submit("train", "t1", {"sweep": str(tmp_path / "s"), "trial": 0, "env": {"TUNEFORGE_SWEEP_TRIAL": "0"}})
    assert trial.status == QUEUED  # the one slot is the first train job's, not the sweep's
    assert scheduler.wait(first_train.id, timeout=60).status == DONE
    assert scheduler.wait(trial.id, timeout=60).status == DONE
    assert scheduler.store.get(sweep.id).status == RUNNING  # the trial ran while its driver still ran
    assert json.loads((tmp_path / "t1" / "out.log").read_text()) == {"TUNEFORGE_SWEEP_TRIAL": "0"}
    assert json.loads((tmp_path / "t0" / "out.log").read_text()) == {}
    assert scheduler.wait(sweep.id, timeout=60).status == DONE


def test_submit_sweep_checks_writes_and_queues_a_driver(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "job_command", lambda job: [sys.executable, "-c", "pass"])
    scheduler = Scheduler(JobStore(tmp_path / "jobs.sqlite"))
    config = {"model_name_or_path": "m", "dataset": "identity", "template": "chatml", "output_dir": "o", "val_size": 2}
    spec = {"n_trials": 2, "params": {"learning_rate": {"low": 1.0e-4, "high": 1.0e-2, "log": True}}}
    with pytest.raises(UserError, match="params.lora_rnk"):
        submit_sweep(scheduler, config, {"params": {"lora_rnk": {"choices": [4]}}}, tmp_path / "bad", tmp_path)
    assert not (tmp_path / "bad").exists() and not scheduler.store.list()

    job = submit_sweep(scheduler, config, spec, tmp_path / "sw", tmp_path)
    sweep_dir = (tmp_path / "sw").resolve()
    assert (job.kind, job.run_dir, job.config_path) == ("sweep", str(sweep_dir), str(sweep_dir / "sweep.yaml"))
    assert job.meta["base_config"] == str(sweep_dir / "config.yaml")
    assert job.meta["jobs_db"] == str((tmp_path / "jobs.sqlite").resolve())
    assert yaml.safe_load((sweep_dir / "config.yaml").read_text()) == config
    assert load_sweep_spec(sweep_dir / "sweep.yaml", config).output_dir == str(sweep_dir)
    with pytest.raises(UserError, match="already"):  # one sweep at a time in a folder
        submit_sweep(scheduler, config, spec, tmp_path / "sw", tmp_path)
