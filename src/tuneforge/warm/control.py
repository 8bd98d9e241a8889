"""`tuneforge warm start | stop | status`: the warm worker of this environment (address.py), from the command line."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tuneforge.errors import UserError
from tuneforge.warm.address import private_dir, socket_path
from tuneforge.warm.client import send

START_TIMEOUT_S = 180.0  # the worker's imports: ~4 s on a warm disk, a minute from a cold network filesystem


def ask(request: dict, path: Path) -> dict | None:
    """The answer of the worker listening on `path` to a status / stop request; None when none listens."""
    if private_dir() is None or not path.exists():
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        send(conn, path, request, [])
        return json.loads(conn.makefile("r", encoding="utf-8").readline())
    except (OSError, ValueError):
        return None
    finally:
        conn.close()


def start(idle_minutes: float) -> str:
    """Start this environment's worker (unless one listens) and wait until it does; a line saying so."""
    if not idle_minutes > 0:
        raise UserError(f"{idle_minutes:g} is not a duration", where="--idle-minutes", fix="give minutes above 0")
    path = socket_path()  # a hash over every source file: once, not at every poll below
    running = ask({"status": True}, path)
    if running:
        return f"a warm worker already runs for this environment (pid {running['pid']}): {path}"
    folder = private_dir(create=True)
    if folder is None:
        raise UserError(
            "is not a folder only you can use", where=str(path.parent), fix="remove it, or set XDG_RUNTIME_DIR"
        )
    log = path.with_suffix(".log")
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuneforge.warm.server", str(path), str(idle_minutes * 60)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not the terminal's: its Ctrl-C is for the runs, forwarded one by one
            cwd=folder,  # `python -m` puts its folder first on sys.path: ours, where no file shadows a library
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while (running := ask({"status": True}, path)) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
            raise UserError(f"the warm worker did not start ({' '.join(tail) or 'no output'})", where=str(log))
        time.sleep(0.1)
    return (
        f"warm worker ready (pid {running['pid']}): `tuneforge train` in this environment now starts without its "
        f"imports. It stops after {idle_minutes:g} idle minutes, or with `tuneforge warm stop`."
    )


def stop() -> str:
    """Stop every warm worker of this user: this environment's and those of others (another venv, older code)."""
    stopped = [answer["pid"] for answer in (ask({"stop": True}, path) for path in _sockets()) if answer]
    for pid in stopped:
        _wait_for_exit(pid)
    if not stopped:
        return "no warm worker runs"
    return f"stopped {len(stopped)} warm worker{'s' if len(stopped) > 1 else ''} (pid {', '.join(map(str, stopped))})"


def status() -> str:
    path = socket_path()
    answer = ask({"status": True}, path)
    if not answer:
        others = [other for other in _sockets() if ask({"status": True}, other)]
        elsewhere = (
            f"; {len(others)} other warm worker{'s' if len(others) > 1 else ''} of yours "
            "(another environment, or older code) `tuneforge warm stop` stops"
            if others
            else ""
        )
        return f"no warm worker runs for this environment (it would listen on {path}){elsewhere}"
    up = time.time() - answer["started"]
    return (
        f"warm worker pid {answer['pid']}, up {up / 60:.1f} min, {answer['runs']} runs, stops after "
        f"{answer['idle_s'] / 60:g} idle min: {path}"
    )


def _sockets() -> list[Path]:
    """The sockets in this user's folder: this environment's worker and any other's."""
    folder = private_dir()
    return sorted(folder.glob("*.sock")) if folder else []


def _wait_for_exit(pid: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with contextlib.suppress(ChildProcessError):  # started by this process: reap it
                os.waitpid(pid, os.WNOHANG)
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
