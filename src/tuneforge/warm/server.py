"""The warm worker: import what a training run imports, then fork one child per `tuneforge train` it is handed.

`python -m tuneforge.warm.server SOCKET IDLE_SECONDS` (started by `tuneforge warm start`, control.py). The worker
itself never runs a step: no model, no data and no parallel region exist in it when it forks, so each child starts
as a fresh process would after its imports. (The few threads libraries start at import, torch's and pyarrow's
allocator's, do not follow a fork; those libraries register fork handlers for that, and a child starts its own.)
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import io
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from pathlib import Path

from tuneforge.config.backends import backends_used
from tuneforge.config.loader import read_flat
from tuneforge.utils import import_structure_cache, startup_gc
from tuneforge.utils.allocator import reexec_with_allocator
from tuneforge.utils.imports import OPTIONAL_BACKENDS, WHILE_LIBRARIES_IMPORT, hold_back
from tuneforge.utils.onednn_cache import bound_primitive_cache
from tuneforge.warm.client import HEADER

# What every `tuneforge train` imports before its first step; a stage's own (trl for DPO / GRPO) come along.
PRELOAD = (
    "torch",
    "transformers.trainer",
    "peft",
    "datasets",
    "trl",
    "tuneforge.cli",
    "tuneforge.train.sft",
    "tuneforge.train.dpo",
)


def preload() -> None:
    """Import what a run would, with the optional backends and scipy held back as the CLI holds them back."""
    hold_back(OPTIONAL_BACKENDS)  # a config that needs one is declined (decline_reason) and runs cold
    hold_back(WHILE_LIBRARIES_IMPORT)  # released in the child by run_training, as in a cold run
    for name in PRELOAD:
        importlib.import_module(name)


def serve(path: Path, idle_s: float) -> None:
    """Listen on `path` until `idle_s` pass without a request, or a stop request comes."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path.unlink(missing_ok=True)  # a dead worker's socket (control.start found nothing listening on it)
    listener.bind(str(path))
    bound = path.stat().st_ino
    listener.listen(16)
    listener.settimeout(idle_s)
    state = {"pid": os.getpid(), "started": time.time(), "idle_s": idle_s, "runs": 0}
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the children are reaped by the kernel
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                return
            conn.settimeout(None)
            if _handle(conn, listener, state) == "stop":
                return
    finally:
        listener.close()
        if path.exists() and path.stat().st_ino == bound:  # not a newer worker's socket
            path.unlink()


def _handle(conn: socket.socket, listener: socket.socket, state: dict) -> str:
    """One request: a run (forked off; `runs` counts them, declined ones too), or control.py's status / stop."""
    try:
        header, fds, _, _ = socket.recv_fds(conn, HEADER.size, 3)
        (size,) = HEADER.unpack(header)
        request = json.loads(_read_exactly(conn, size))
    except (OSError, ValueError, struct.error):
        conn.close()
        return "bad"
    if "run" not in request:  # control.py: status or stop
        conn.sendall((json.dumps(state) + "\n").encode())
        conn.close()
        return "stop" if request.get("stop") else "status"
    state["runs"] += 1
    if os.fork() == 0:
        listener.close()
        _child(conn, request, fds)  # never returns
    for fd in fds:
        os.close(fd)
    conn.close()
    return "run"


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("the request ended early")
        data += chunk
    return data


def _child(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """Become the caller's process (folder, environment, terminal), run its command, report, exit."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # a run's own subprocesses are waited for
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, forwarded: as in a foreground process
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(signum, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        reason = decline_reason(request["run"])
        if reason:
            conn.sendall(f"declined {reason}\n".encode())
            os._exit(0)
        conn.sendall(f"pid {os.getpid()}\n".encode())
        _adopt_stdio(fds)
        _stop_when_caller_goes(conn)
        code = _run_cli(request["run"])
    except BaseException:  # noqa: BLE001 - a child must never return into the worker's loop
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()  # what a run registered (and the libraries: trackers, profilers) runs
            sys.stdout.flush()
            sys.stderr.flush()
            conn.sendall(f"exit {code}\n".encode())
        except BaseException:  # noqa: BLE001
            pass
        os._exit(code)


def decline_reason(argv: list[str]) -> str | None:
    """Why the worker cannot run this command as a fresh process would, or None. The worker holds the optional
    backends back (preload), so a config that uses one (config/backends.py) runs cold. A config that does not read
    is not declined: the child reports it as the CLI does."""
    from tuneforge.cli import build_parser, split_config  # the command line: preloaded in the worker

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # a usage error is the child's to print, to the caller
            args = build_parser().parse_args(argv)
        flat, _ = read_flat(*split_config(args.config))
    except (SystemExit, Exception):  # noqa: BLE001 - the CLI, run next, reports what does not read
        return None
    used = backends_used(flat)
    return f"this config uses {', '.join(sorted(used))}" if used else None


def _adopt_stdio(fds: list[int]) -> None:
    """The caller's stdin / stdout / stderr become this process's; line-buffered where they are a terminal."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=stream is sys.stderr or os.isatty(stream.fileno()))


def _stop_when_caller_goes(conn: socket.socket) -> None:
    """A run does not outlive its `tuneforge train`. The caller forwards the signals it can catch; one that closes
    the connection without a word was killed outright (SIGKILL: a force stop), and so is its run."""

    def watch() -> None:
        try:
            gone = conn.recv(1) == b""
        except OSError:
            gone = True
        if gone:
            os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="tuneforge-warm-caller", daemon=True).start()


def _run_cli(argv: list[str]) -> int:
    from tuneforge.cli import main

    bound_primitive_cache()  # as __main__ does for a train command: read when oneDNN builds its first primitive
    sys.argv = ["tuneforge", *argv]
    try:
        return main()
    except SystemExit as exc:  # argparse's usage errors (2), --help (0)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path, idle_s = Path(argv[0]), float(argv[1])
    startup_gc.defer()
    preload()
    startup_gc.settle()  # the imports frozen before the first fork: no collection walks (and copies) their pages
    serve(path, idle_s)
    return 0


if __name__ == "__main__":  # as __main__ does for a train command, before the imports
    bound_primitive_cache()
    reexec_with_allocator()
    import_structure_cache.install()
    raise SystemExit(main())
