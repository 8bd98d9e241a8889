"""Python's garbage collector while a training process starts.

Importing torch, transformers, peft, datasets and trl allocates millions of objects that live as long as the
process; the cyclic collector, at its default thresholds, runs ~1,000 times meanwhile (six times over every object)
and finds almost nothing to free: ~0.5 s of a ~4.5 s start here (tiny LoRA, docs/benchmarks.md "Where our start-up
goes"). `defer()` turns it off while the libraries, the data and the model load; `settle()`, once the trainer is
built, moves every object alive then into the permanent generation (`gc.freeze`: the collector no longer walks
them) and turns it back on, so the training steps are collected as before, over their own objects only.
Tokenizing leaves little for it meanwhile: 12,641 unreachable objects after 60,000 rows. What is unreachable at
`settle()` is frozen with the rest, never freed: on the tiny LoRA / full / DPO runs 12,646–12,845 small objects
(tuples, cells, functions, 179 frames; no tensor), ~3 MB; freeing them would take a full collection over every
object (~0.3 s), most of what deferring saves.

Only a process that runs `tuneforge train` from its start defers (`tuneforge.__main__`); `settle()` does nothing
where `defer()` was not called (a test process, a program that imports tuneforge), so nothing is frozen there.
"""

from __future__ import annotations

import gc

_deferred = False


def defer() -> None:
    """No cyclic collection until `settle()`."""
    global _deferred
    if not _deferred and gc.isenabled():
        gc.disable()
        _deferred = True


def settle() -> bool:
    """Freeze what is alive now and collect as before from here on. False where nothing was deferred."""
    global _deferred
    if not _deferred:
        return False
    gc.freeze()
    gc.enable()
    _deferred = False
    return True
