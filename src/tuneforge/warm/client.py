"""The `tuneforge train` side: hand the command to this environment's warm worker, if one listens.

Standard library only: this runs before anything else a training process imports, and when no worker listens it
costs a hash of the environment and a stat.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
from pathlib import Path

from tuneforge.warm.address import disabled, private_dir, socket_path

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
HEADER = struct.Struct("!I")  # the length of the JSON request that follows


def run_in_worker(argv: list[str]) -> int | None:
    """Run `tuneforge <argv>` in the warm worker and return its exit status; None: no worker took it (none listens,
    TUNEFORGE_WARM=0, a torchrun rank, or the worker declined this config), so the caller runs it itself."""
    if disabled() or "LOCAL_RANK" in os.environ or private_dir() is None:
        return None
    path = socket_path()
    if not path.exists():
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        send(conn, path, {"run": argv, "cwd": os.getcwd(), "env": dict(os.environ)}, [0, 1, 2])
        replies = conn.makefile("r", encoding="utf-8")
        first = replies.readline().split(" ", 1)
    except OSError:  # a worker that died and left its socket, or one that went away meanwhile
        conn.close()
        return None
    except KeyboardInterrupt:  # Ctrl-C before the child said who it is: closing the connection ends it
        conn.close()
        print("tuneforge: interrupted", file=sys.stderr)
        return 130
    if first[0] != "pid":  # "declined <reason>": this config needs what the worker keeps out
        conn.close()
        return None
    return _wait_for_child(int(first[1]), replies, conn)


def send(conn: socket.socket, path: Path, request: dict, fds: list[int]) -> None:
    """Connect `conn` to the worker at `path` and send it `request` with these file descriptors (the length-prefixed
    JSON server.py reads). OSError when nothing listens there."""
    conn.connect(str(path))
    body = json.dumps(request).encode()
    socket.send_fds(conn, [HEADER.pack(len(body))], fds)
    conn.sendall(body)


def _wait_for_child(pid: int, replies, conn: socket.socket) -> int:
    """Forward the signals a terminal sends to the child; its exit status once it reports one."""

    def forward(signum, frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    try:
        for line in replies:
            if line.startswith("exit "):
                return int(line.split()[1])
    finally:
        conn.close()
    print(f"tuneforge: the warm worker's run (pid {pid}) ended without an exit status", file=sys.stderr)
    return 1
