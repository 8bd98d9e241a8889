"""The job store, queue and runner without a browser: order, re-attach after a restart, abort → checkpoint → resume."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from tuneforge.jobs import runner
from tuneforge.jobs.progress import progress
from tuneforge.jobs.scheduler import Scheduler
from tuneforge.jobs.store import ABORTED, CANCELLED, DONE, FAILED, RUNNING, JobStore
from tuneforge.utils.run_folder import read_records

STAMP = textwrap.dedent(
    """
    import json, sys, time
    start = time.time(); time.sleep(float(sys.argv[2]))
    print(json.dumps({"start": start, "end": time.time()}), flush=True)
    """
)


@pytest.fixture
def store(tmp_path):
    return JobStore(tmp_path / "jobs.sqlite")


def fake_command(seconds: float):
    """Jobs that sleep and print when they ran, instead of a tuneforge command (the queue logic is the same)."""

    def command(job):
        return [sys.executable, "-c", STAMP, job.config_path, str(seconds)]

    return command


def submit(scheduler, tmp_path, name, kind="eval"):
    run = tmp_path / name
    run.mkdir()
    return scheduler.submit(kind, run, run / "config.yaml", run / "run.log", tmp_path)


def test_queue_runs_jobs_one_after_another_in_order(store, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "job_command", fake_command(0.3))
    scheduler = Scheduler(store)
    jobs = [submit(scheduler, tmp_path, f"j{i}") for i in range(3)]
    assert [j.status for j in jobs] == [RUNNING, "queued", "queued"]
    assert [j.id for j in store.queue()] == [jobs[1].id, jobs[2].id]
    for job in jobs:
        assert scheduler.wait(job.id, timeout=60).status == DONE
    times = [json.loads((tmp_path / f"j{i}" / "run.log").read_text()) for i in range(3)]
    for before, after in zip(times, times[1:], strict=False):
        assert after["start"] >= before["end"]  # never two at once, in submission order


def test_cancel_a_queued_job(store, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "job_command", fake_command(0.5))
    scheduler = Scheduler(store)
    first, second = submit(scheduler, tmp_path, "a"), submit(scheduler, tmp_path, "b")
    assert scheduler.abort(second.id) == CANCELLED
    assert scheduler.wait(first.id, timeout=60).status == DONE
    scheduler.tick()
    assert store.get(second.id).status == CANCELLED and store.get(second.id).pid is None


def test_a_failing_job_is_marked_failed_with_its_exit_code(store, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "job_command", lambda job: [sys.executable, "-c", "raise SystemExit(3)"])
    scheduler = Scheduler(store)
    job = scheduler.wait(submit(scheduler, tmp_path, "x").id, timeout=60)
    assert (job.status, job.returncode) == (FAILED, 3)


def test_restarted_server_reattaches_to_a_running_job(store, tmp_path):
    """A 'UI server' process queues a job and dies; the job runs on; a new scheduler finds it and sees it end."""
    run = tmp_path / "r"
    run.mkdir()
    server = textwrap.dedent(
        f"""
        import os, sys
        from tuneforge.jobs import runner
        from tuneforge.jobs.scheduler import Scheduler
        from tuneforge.jobs.store import JobStore
        runner.job_command = lambda job: [sys.executable, "-c", {STAMP!r}, "x", "2"]
        s = Scheduler(JobStore({str(store.path)!r}))
        s.submit("train", {str(run)!r}, {str(run / "config.yaml")!r}, {str(run / "run.log")!r}, {str(tmp_path)!r})
        os._exit(0)  # as if killed: no clean-up, no waiting for the child
        """
    )
    subprocess.run([sys.executable, "-c", server], check=True, timeout=60)
    (job,) = store.list()
    assert job.status == RUNNING and runner.is_alive(job.pid, job.pid_started)  # the run outlived its server

    restarted = Scheduler(store)
    restarted.tick()
    assert store.get(job.id).status == RUNNING  # re-attached by pid, not marked dead
    (run / "train_results.json").write_text("{}")  # what a finished training leaves
    assert restarted.wait(job.id, timeout=60).status == DONE
    assert "start" in json.loads((run / "run.log").read_text())


@pytest.mark.slow
def test_abort_saves_a_checkpoint_and_the_run_resumes(store, tmp_path, train_overrides):
    """The real `python -m tuneforge train`: Abort (SIGTERM) → checkpoint at the next step → resume to the end."""
    run = tmp_path / "run"
    run.mkdir()
    cfg = train_overrides("lora", output_dir=str(run), max_steps=100000, save_steps=100000)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    scheduler = Scheduler(store)
    job = scheduler.submit("train", run, run / "config.yaml", run / "run.log", tmp_path)
    deadline = time.monotonic() + 120
    while len(read_records(run)) < 3:
        assert store.get(job.id).status == RUNNING, (run / "run.log").read_text()
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert scheduler.abort(job.id) == "stopping"
    job = scheduler.wait(job.id, timeout=120)
    assert (job.status, job.returncode) == (ABORTED, 130)
    stopped_at = progress(run).step
    assert (run / f"checkpoint-{stopped_at}" / "trainer_state.json").is_file()
    assert not (run / "train_results.json").exists()  # stopped, not finished: resumable

    # the same run (same identity keys), continued in this process to a nearby end: it starts from the checkpoint
    from tuneforge.config import load_config
    from tuneforge.train.run import run_training

    resumed = load_config(None, {**cfg, "max_steps": stopped_at + 2})
    assert run_training(resumed) == run
    steps = [s for s, _ in progress(run).train_curve]
    assert steps == list(range(1, stopped_at + 3))
    assert (run / "adapter_model.safetensors").is_file()
