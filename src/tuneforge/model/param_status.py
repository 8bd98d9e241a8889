"""`print_param_status`: every parameter's name, dtype, device and trainable flag, printed once the model is ready
(for training: after the method made its weights trainable), in LLaMA-Factory's line format, by local rank 0."""

from __future__ import annotations

import os


def param_status_lines(model) -> list[str]:
    return [
        f"name: {name}, dtype: {param.dtype}, device: {param.device}, trainable: {param.requires_grad}"
        for name, param in model.named_parameters()
    ]


def print_param_status(model, enabled: bool) -> None:
    """Print the lines to stdout (as LLaMA-Factory does, not through the logger) when `enabled`, on each node's
    first process only."""
    if enabled and int(os.environ.get("LOCAL_RANK", "0")) == 0:
        print("\n".join(param_status_lines(model)), flush=True)
