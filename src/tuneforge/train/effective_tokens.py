"""`include_effective_tokens_per_second`: the training set's real (non-padding) tokens per second, as LLaMA-Factory
computes it (extras/misc.py calculate_tps): tokens of every training row × epochs trained / train_runtime, per
process under torchrun. The rows are counted before batching, so padding never counts; written as
`effective_tokens_per_sec` into the run's train metrics (train_results.json)."""

from __future__ import annotations

# stage -> (column, how many times it is fed to the model): a preference pair runs its prompt once per response
TOKEN_COLUMNS = {
    "pt": (("input_ids", 1),),
    "sft": (("input_ids", 1),),
    "rm": (("chosen_ids", 1), ("rejected_ids", 1)),  # the prompt is already inside both
    "dpo": (("prompt_ids", 2), ("chosen_ids", 1), ("rejected_ids", 1)),
    "kto": (("prompt_ids", 1), ("completion_ids", 1)),
}


def count_tokens(dataset, stage: str) -> int:
    """The tokens of every row of one epoch of `dataset`, as the stage feeds them to the model."""
    return sum(times * sum(len(ids) for ids in dataset[column]) for column, times in TOKEN_COLUMNS[stage])


def effective_tokens_per_second(dataset, stage: str, metrics: dict) -> float:
    """LLaMA-Factory's formula over the Trainer's train metrics (`epoch`, `train_runtime`)."""
    import torch.distributed as dist  # late: torch; only a run that reports this number needs it

    result = count_tokens(dataset, stage) * metrics["epoch"] / metrics["train_runtime"]
    return result / dist.get_world_size() if dist.is_available() and dist.is_initialized() else result
