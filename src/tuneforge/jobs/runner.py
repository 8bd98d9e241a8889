"""Start a job as its own detached process and tell, later and from any process, whether it still runs.

A job runs `[sys.executable, "-m", "tuneforge", <kind>, <config.yaml>]`: the interpreter of this very environment,
never a `tuneforge` found on PATH, and no shell. Its stdout and stderr go to a log file (never a pipe that nobody
reads once the browser or the UI server is gone). It gets its own session, so closing the terminal or stopping the
UI server does not stop it; the store keeps its pid and start time, and a restarted UI re-attaches by pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from tuneforge.jobs.store import ABORTED, DONE, FAILED, Job
from tuneforge.utils import run_folder

ABORT_EXIT_CODES = (130, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGTERM)
# How the files of a job of this kind tell it finished, for jobs whose exit code was not seen (re-attached).
DONE_CHECKS = {"train": run_folder.is_complete}


def job_command(job: Job) -> list[str]:
    if job.kind == "sweep":  # `tuneforge sweep config.yaml sweep.yaml`, its trials queued in this very store
        base, jobs_db = job.meta["base_config"], job.meta["jobs_db"]
        return [sys.executable, "-m", "tuneforge", "sweep", base, job.config_path, "--jobs-db", jobs_db]
    return [sys.executable, "-m", "tuneforge", job.kind, job.config_path]


def spawn(job: Job) -> subprocess.Popen:
    """Start the job's process detached from this one, its output appended to the job's log file."""
    Path(job.log_path).parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **job.meta.get("env", {})}  # a sweep trial's study and number
    env.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    with open(job.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            job_command(job),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=job.cwd,
            env=env,
            start_new_session=True,
        )


def process_start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def is_alive(pid: int | None, started: float | None) -> bool:
    """The process with this pid runs and is the one we started (not a later process that reused the pid)."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - started) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def outcome(job: Job, returncode: int | None) -> str:
    """done / aborted / failed, from the exit code when we saw it, else from the files the job left."""
    if returncode is not None:
        if returncode == 0:
            return DONE
        return ABORTED if job.abort_requested or returncode in ABORT_EXIT_CODES else FAILED
    is_done = DONE_CHECKS.get(job.kind)
    if is_done and is_done(job.run_dir):
        return DONE
    if job.abort_requested:
        return ABORTED
    tail = read_tail(job.log_path, 4000)
    if is_done or "Traceback" in tail or "error:" in tail:
        return FAILED
    return DONE


def send_stop(job: Job, force: bool = False) -> bool:
    """Ask the job's process to stop: SIGTERM (stop at the next step and save a checkpoint), or SIGKILL."""
    if not is_alive(job.pid, job.pid_started):
        return False
    try:
        os.kill(job.pid, signal.SIGKILL if force else signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def read_tail(path: str | Path, max_chars: int = 20000) -> str:
    """The end of a log file (the whole file when short); '' when it does not exist yet."""
    path = Path(path)
    if not path.is_file():
        return ""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - max_chars * 4))
        text = f.read().decode("utf-8", errors="replace")
    text = text.replace("\r\n", "\n")
    # progress bars rewrite their line with \r: keep what the last rewrite shows
    text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))
    return text[-max_chars:]
