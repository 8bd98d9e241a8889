"""Worker threads run the requests: one, when the engine generates one reply at a time; as many as the engine
batches (`engine.max_batch_size`) when its scheduler decodes them together (chat/batching.py), each thread then
feeding one request's stream. Requests wait in a bounded queue; their results come back to the event loop through
an asyncio queue, so the loop never blocks on generation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_END = object()


class Overloaded(Exception):
    """More requests are waiting than the server accepts."""


class EngineWorker:
    def __init__(self, engine, max_pending: int = 64):
        self.engine = engine
        self.max_pending = max_pending
        self.pending = 0  # queued + running
        self.peak_pending = 0  # the most pending at once since the last reset_peak() (what /health reports)
        self._lock = threading.Lock()
        self.threads = max(1, getattr(engine, "max_batch_size", 1) or 1)
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="tuneforge-engine")

    def reset_peak(self) -> int:
        """Start a new peak from what is pending now; returns the old peak."""
        with self._lock:
            peak, self.peak_pending = self.peak_pending, self.pending
        return peak

    async def iterate(self, produce: Callable[[threading.Event], Iterator[Any]]) -> AsyncIterator[Any]:
        """Run `produce(cancel)` on the worker thread and yield what it yields. When the consumer stops early
        (client gone, error, aclose) `cancel` is set: a queued job is skipped, a running one stops."""
        with self._lock:
            if self.pending >= self.max_pending:
                raise Overloaded(f"{self.pending} requests are already waiting")
            self.pending += 1
            self.peak_pending = max(self.peak_pending, self.pending)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()

        def send(item, error=None):
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (item, error))
            except RuntimeError:  # the loop is closed: the server is shutting down
                cancel.set()

        def work():
            try:
                if not cancel.is_set():
                    for item in produce(cancel):
                        send(item)
                        if cancel.is_set():
                            break
                send(_END)
            except BaseException as exc:
                send(_END, exc)
            finally:
                with self._lock:
                    self.pending -= 1

        self._pool.submit(work)
        try:
            while True:
                item, error = await queue.get()
                if error is not None:
                    raise error
                if item is _END:
                    return
                yield item
        finally:
            cancel.set()

    async def run(self, func: Callable[[], Any]) -> Any:
        """Run one call on the worker thread and return its result."""
        results = self.iterate(lambda cancel: iter([func()]))
        try:
            return await anext(results)
        finally:
            await results.aclose()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
