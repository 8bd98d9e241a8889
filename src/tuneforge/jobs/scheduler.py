"""The scheduler: one job at a time, in queue order; it notices finished jobs, including ones it re-attached to.

A driver job (a sweep, which only queues and waits for its trials) starts at once and takes no slot of max_running.

`tick()` does one round and is what the tests call; `start()` runs it every second in a daemon thread of the UI
server. A job that was running when the UI server stopped is found again by its pid: while that process lives the
job stays `running`; when it is gone, its files tell how it ended.
"""

from __future__ import annotations

import threading
import time

from tuneforge.jobs import runner
from tuneforge.jobs.store import CANCELLED, DRIVER_KINDS, FAILED, KINDS, QUEUED, RUNNING, Job, JobStore
from tuneforge.utils.logging import get_logger

logger = get_logger(__name__)
WORKER_KINDS = tuple(kind for kind in KINDS if kind not in DRIVER_KINDS)  # the jobs max_running counts


class Scheduler:
    def __init__(self, store: JobStore, interval: float = 1.0, max_running: int = 1):
        self.store = store
        self.interval = interval
        self.max_running = max_running
        self._children: dict[int, object] = {}  # job id -> Popen, for the jobs this process started
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def submit(self, kind: str, run_dir, config_path, log_path, cwd, meta: dict | None = None) -> Job:
        job = self.store.add(kind, run_dir, config_path, log_path, cwd, meta)
        self.tick()
        return self.store.get(job.id)

    def tick(self) -> None:
        with self._lock:
            running = [job for job in self.store.list(RUNNING) if not self._reap(job)]
            while (driver := self.store.claim_next(DRIVER_KINDS)) is not None:
                self._start(driver)  # a sweep only drives its trials (train jobs): it never waits for a slot
            working = [job for job in running if job.kind not in DRIVER_KINDS]
            while len(working) < self.max_running:
                job = self.store.claim_next(WORKER_KINDS)
                if job is None:
                    break
                if self._start(job):
                    working.append(job)

    def _start(self, job: Job) -> bool:
        try:
            proc = runner.spawn(job)
        except OSError as exc:
            logger.error("job %s could not start: %s", job.id, exc)
            self.store.finish(job.id, FAILED)
            return False
        self._children[job.id] = proc
        self.store.set_pid(job.id, proc.pid, runner.process_start_time(proc.pid))
        return True

    def _reap(self, job: Job) -> bool:
        """Record the job's end if its process has ended; True when it did."""
        proc = self._children.get(job.id)
        if proc is not None:
            code = proc.poll()
            if code is None:
                return False
            del self._children[job.id]
        else:
            if job.pid is None and time.time() - (job.started or 0) < 30:
                return False  # claimed by another process a moment ago; its pid is on the way
            if runner.is_alive(job.pid, job.pid_started):
                return False
            code = None
        job = self.store.get(job.id)
        self.store.finish(job.id, runner.outcome(job, code), code)
        logger.info("job %s ended: %s (exit %s)", job.id, self.store.get(job.id).status, code)
        return True

    def abort(self, job_id: int, force: bool = False) -> str:
        """Cancel a queued job, or ask a running one to stop at its next step (saving a checkpoint)."""
        with self._lock:
            job = self.store.get(job_id)
            if job is None:
                return "unknown"
            if job.status == QUEUED:
                self.store.finish(job.id, CANCELLED)
                return CANCELLED
            if job.status != RUNNING:
                return job.status
            self.store.request_abort(job.id)
            runner.send_stop(self.store.get(job.id), force=force)
            return "stopping"

    def wait(self, job_id: int, timeout: float = 300.0, poll: float = 0.2) -> Job:
        """Tick until the job reaches a final status (for tests and scripts)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.tick()
            job = self.store.get(job_id)
            if not job.active:
                return job
            time.sleep(poll)
        raise TimeoutError(f"job {job_id} still {self.store.get(job_id).status} after {timeout}s")

    def start(self) -> Scheduler:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="tuneforge-scheduler", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # keep scheduling; the error is in the server log
                logger.exception("scheduler tick failed")
