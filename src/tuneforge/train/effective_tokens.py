"""`include_effective_tokens_per_second`: the training set's real (non-padding) tokens per second, as LLaMA-Factory
computes it (extras/misc.py calculate_tps): tokens of every training row × epochs trained / train_runtime, per
process under torchrun. The rows are counted before batching, so padding never counts; written as
`effective_tokens_per_sec` into the run's train metrics (train_results.json)."""

from __future__ import annotations

from tuneforge.config.stages import stage_record


def count_tokens(dataset, stage: str) -> int:
    """The tokens of every row of one epoch of `dataset`, as the stage feeds them to the model: its record's
    token_columns, (column, times fed) — a preference pair runs its prompt once per response."""
    columns = stage_record(stage).token_columns
    return sum(times * sum(len(ids) for ids in dataset[column]) for column, times in columns)


def effective_tokens_per_second(dataset, stage: str, metrics: dict) -> float:
    """LLaMA-Factory's formula over the Trainer's train metrics (`epoch`, `train_runtime`)."""
    import torch.distributed as dist  # late: torch; only a run that reports this number needs it

    result = count_tokens(dataset, stage) * metrics["epoch"] / metrics["train_runtime"]
    return result / dist.get_world_size() if dist.is_available() and dist.is_initialized() else result
