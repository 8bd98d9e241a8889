"""An evaluation set is one dataset, or {name: dataset} with `eval_on_each_dataset` (each evaluated on its own, as
LLaMA-Factory does); what transforms eval sets (packing, caching) goes through here so both shapes stay alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def each_eval_set(eval_set: Any, transform: Callable[[Any], Any]) -> Any:
    """`transform` applied to the eval set, or to each set of a {name: dataset}; None stays None."""
    if eval_set is None:
        return None
    if isinstance(eval_set, dict):
        return {name: transform(ds) for name, ds in eval_set.items()}
    return transform(eval_set)
