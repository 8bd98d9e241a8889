"""The run store: one SQLite table of jobs (train / eval / export), their queue order, process ids and status.

Every method opens its own short connection, so the store is safe to use from the web server's threads and from
two processes (the UI server and a test) at once. The queue is the jobs with status `queued`, oldest first.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUEUED, RUNNING, DONE, FAILED, ABORTED, CANCELLED = "queued", "running", "done", "failed", "aborted", "cancelled"
ACTIVE = (QUEUED, RUNNING)
FINAL = (DONE, FAILED, ABORTED, CANCELLED)
KINDS = ("train", "eval", "export", "sweep")  # sweep: a `tuneforge sweep` driver, whose trials are train jobs
DRIVER_KINDS = ("sweep",)  # jobs that only drive other jobs: they do not count toward the scheduler's max_running
DB_FILE = "tuneforge_jobs.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    config_path TEXT NOT NULL,
    log_path TEXT NOT NULL,
    cwd TEXT NOT NULL,
    pid INTEGER,
    pid_started REAL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    returncode INTEGER,
    abort_requested INTEGER NOT NULL DEFAULT 0,
    meta TEXT NOT NULL DEFAULT '{}'
)
"""


@dataclass
class Job:
    id: int
    kind: str
    status: str
    run_dir: str
    config_path: str
    log_path: str
    cwd: str
    pid: int | None = None
    pid_started: float | None = None
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    returncode: int | None = None
    abort_requested: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started


class JobStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    @staticmethod
    def _job(row: sqlite3.Row) -> Job:
        data = dict(row)
        data["meta"] = json.loads(data["meta"] or "{}")
        data["abort_requested"] = bool(data["abort_requested"])
        return Job(**data)

    def add(
        self,
        kind: str,
        run_dir: str | Path,
        config_path: str | Path,
        log_path: str | Path,
        cwd: str | Path,
        meta: dict | None = None,
    ) -> Job:
        if kind not in KINDS:
            raise ValueError(f"unknown job kind {kind!r}")
        with closing(self._connect()) as db, db:
            cur = db.execute(
                "INSERT INTO jobs (kind, status, run_dir, config_path, log_path, cwd, created, meta) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    kind,
                    QUEUED,
                    str(run_dir),
                    str(config_path),
                    str(log_path),
                    str(cwd),
                    time.time(),
                    json.dumps(meta or {}, ensure_ascii=False),
                ),
            )
            job_id = cur.lastrowid
        return self.get(job_id)

    def get(self, job_id: int) -> Job | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
        return self._job(row) if row else None

    def list(self, status: str | tuple[str, ...] | None = None, kind: str | None = None) -> list[Job]:
        """Jobs, oldest first; the queued ones in this order are the queue."""
        sql, args = "SELECT * FROM jobs WHERE 1=1", []
        if status is not None:
            statuses = (status,) if isinstance(status, str) else tuple(status)
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args += list(statuses)
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        with closing(self._connect()) as db:
            return [self._job(r) for r in db.execute(sql + " ORDER BY id", args).fetchall()]

    def queue(self) -> list[Job]:
        return self.list(QUEUED)

    def claim_next(self, kinds: tuple[str, ...] | None = None) -> Job | None:
        """Take the oldest queued job (of these kinds) and mark it running (pid not yet known); None when there is
        none."""
        sql, args = "SELECT id FROM jobs WHERE status = ?", [QUEUED]
        if kinds is not None:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args += list(kinds)
        with closing(self._connect()) as db, db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(sql + " ORDER BY id LIMIT 1", args).fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET status = ?, started = ? WHERE id = ?", (RUNNING, time.time(), row["id"]))
        return self.get(row["id"])

    def set_pid(self, job_id: int, pid: int, pid_started: float | None) -> None:
        self._update(job_id, pid=pid, pid_started=pid_started)

    def finish(self, job_id: int, status: str, returncode: int | None = None) -> None:
        if status not in FINAL:
            raise ValueError(f"{status!r} is not a final status")
        self._update(job_id, status=status, returncode=returncode, finished=time.time())

    def request_abort(self, job_id: int) -> None:
        self._update(job_id, abort_requested=1)

    def update_meta(self, job_id: int, **meta) -> None:
        job = self.get(job_id)
        self._update(job_id, meta=json.dumps({**job.meta, **meta}, ensure_ascii=False))

    def _update(self, job_id: int, **values) -> None:
        cols = ", ".join(f"{k} = ?" for k in values)
        with closing(self._connect()) as db, db:
            db.execute(f"UPDATE jobs SET {cols} WHERE id = ?", (*values.values(), int(job_id)))
