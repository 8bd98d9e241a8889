"""`preprocessing_num_workers: N`: tokenize in batches of `preprocessing_batch_size` on N worker processes
(datasets' `map(batched=True, num_proc=N)`). Same samples, same order, same drop counts as one process."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections import Counter
from typing import TYPE_CHECKING

from tuneforge.data.stage_sets import encode_batch

if TYPE_CHECKING:
    from tuneforge.config.data_args import DataArguments

DROPPED = "dropped"  # each input sample gives one row: its encoded JSON, or why it was dropped


def encode_in_workers(stage: str, name: str, conversations: list, template, tokenizer, args: DataArguments):
    """(columns, dropped) like the stage's own encoder, computed by `args.preprocessing_num_workers` processes."""
    from datasets import Dataset  # heavy: only a process that tokenizes in workers imports it

    def encode(indices: list[int]) -> dict[str, list]:
        batch = [conversations[i] for i in indices]
        columns, dropped = encode_batch(stage, batch, template, tokenizer, args, pack=False)
        kept = len(next(iter(columns.values()), []))
        rows = [json.dumps({key: values[i] for key, values in columns.items()}) for i in range(kept)]
        reasons = [why for why, n in dropped.items() for _ in range(n)]
        return {"example": rows + [""] * len(reasons), DROPPED: [""] * kept + reasons}

    index = Dataset.from_dict({"index": list(range(len(conversations)))})
    workers = max(1, min(args.preprocessing_num_workers or 1, len(conversations)))
    with _workers_die_on_sigterm():
        encoded = index.map(
            encode,
            input_columns="index",
            batched=True,
            batch_size=args.preprocessing_batch_size,
            num_proc=workers if workers > 1 else None,
            remove_columns=["index"],
            new_fingerprint=f"tuneforge-{stage}-{name}-{len(conversations)}-{workers}",  # no hashing of all samples
            load_from_cache_file=False,
            desc=f"Tokenizing {name}",
        )
    columns: dict[str, list] = {}
    for row, reason in zip(encoded["example"], encoded[DROPPED], strict=True):
        if not reason:
            for key, value in json.loads(row).items():
                columns.setdefault(key, []).append(value)
    return columns, Counter(reason for reason in encoded[DROPPED] if reason)


@contextlib.contextmanager
def _workers_die_on_sigterm():
    """SIGTERM at its default while datasets forks its pool: the pool stops its workers with SIGTERM (after a worker
    failed, too), and a handler of the caller's (a run's or a sweep's clean stop only sets a flag) inherited by them
    would keep them waiting and the pool's join with them, for ever."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
