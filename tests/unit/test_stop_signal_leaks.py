"""A clean-stop handler (SIGTERM / SIGINT only set a flag) must not outlive the run that installed it, nor reach the
tokenizing pool's forked workers: the pool stops them with SIGTERM, and a worker that only sets a flag kept it
waiting for ever (seen: a test process hung in `Pool.terminate` after an earlier in-process run raised)."""

import multiprocessing
import signal
from types import SimpleNamespace

import pytest

from tuneforge.data.parallel import _workers_die_on_sigterm
from tuneforge.train.callbacks import StopOnSignal
from tuneforge.train.common import train_restoring_signals


def _child_reports(queue):
    queue.put(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)


def _forked_with_default_sigterm() -> bool:
    fork = multiprocessing.get_context("fork")
    queue = fork.Queue()
    child = fork.Process(target=_child_reports, args=(queue,))
    child.start()
    reported = queue.get(timeout=60)
    child.join(60)
    return reported


def test_workers_forked_while_tokenizing_die_on_sigterm():
    def flag(*_):
        pass

    previous = signal.signal(signal.SIGTERM, flag)
    try:
        inherited = not _forked_with_default_sigterm()  # what a fork gets without the guard: the flag handler
        with _workers_die_on_sigterm():
            forked_with_default = _forked_with_default_sigterm()
        after = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert inherited and forked_with_default
    assert after is flag  # the caller's own handler is back


def test_a_run_that_raises_gives_the_handlers_back():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    stop = StopOnSignal()

    class Trainer:
        callback_handler = SimpleNamespace(callbacks=[stop])

        def train(self, resume_from_checkpoint=None):
            stop.on_train_begin(None, None, None)
            assert signal.getsignal(signal.SIGTERM) == stop.request_stop  # installed for the run
            raise RuntimeError("a step failed")

    with pytest.raises(RuntimeError, match="a step failed"):
        train_restoring_signals(Trainer(), None)
    assert {sig: signal.getsignal(sig) for sig in before} == before
