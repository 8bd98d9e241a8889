"""How a torchrun rank leaves once its run is over: without Python's interpreter shutdown.

gloo runs collectives on worker threads of its own, and the thread that finishes one also frees its Work, whose
tensors may be Python objects: freeing them takes the GIL. When that thread is still finishing the rank's last
collective (under DeepSpeed ZeRO-3, a parameter all-gather) as the main thread reaches interpreter shutdown, Python
3.11-3.13 end the thread instead of handing it the GIL, by an unwind that C++ does not allow there: the rank aborts
("terminate called without an active exception", SIGABRT) after it trained and saved everything, and torchrun fails
the run. Seen on a loaded 2-core machine in about one ZeRO-3 test run in eight (a core dump showed the main thread
in Py_FinalizeEx, a gloo thread in ~AsyncAllgatherWork taking the GIL).

So a finished rank does what shutdown does first (waits for Python's non-daemon threads, runs the atexit functions,
flushes its output), then ends the process at once, gloo's threads with it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading


def leave_rank(code: int) -> None:
    """End this process with `code` after its threads, atexit functions and output are done; never returns."""
    threading._shutdown()  # what Py_FinalizeEx does first: join the non-daemon threads
    atexit._run_exitfuncs()  # then the atexit functions (logging, trackers' finish, ...)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # closed or replaced: nothing to write
            stream.flush()
    os._exit(code)
