"""Activation checkpointing for the long steps only: a rare long batch no longer sets the run's peak memory.

`gradient_checkpointing: auto` leaves checkpointing off where the run fits (it costs a second forward pass).
Without it a step keeps every layer's activations, so the run's peak follows its longest step: on a length-skewed
set (the 100m benchmark's: median step ~260 tokens, a few of 770-1,550) the 4 long steps of 24 set a peak ~390 MiB
above what the others need. Those steps alone are recomputed: a forward whose batch holds more than
`LONG_STEP_FACTOR` x a typical step's tokens (the median row's length x rows a batch) runs its decoder layers
checkpointed, every other forward keeps its activations. Measured there (full fine-tuning, bf16, one thread):
2,947 -> 2,554 MiB peak RSS at 50.2 -> 51.9 s; checkpointing every step gives 2,446 MiB at 58.8-62.3 s.
Checkpointing recomputes the same values, so the loss curve is the one an uncheckpointed run draws.
"""

from __future__ import annotations

LONG_STEP_FACTOR = 2


def typical_step_tokens(dataset, rows: int) -> int | None:
    """The median row's length x `rows`: what a batch of the set typically holds (a padded batch of length-grouped
    rows, or a padding-free one of any rows). None for a set whose rows cannot be measured (streaming, no
    `input_ids`)."""
    columns = getattr(dataset, "column_names", None) or ()
    if "input_ids" not in columns or not len(dataset):
        return None
    import pyarrow.compute as pc  # the lengths from Arrow: no Python list of every row's tokens

    lengths = sorted(pc.list_value_length(dataset.with_format("arrow")["input_ids"]).to_pylist())
    return lengths[len(lengths) // 2] * rows


def checkpoint_long_steps(model, threshold_tokens: int) -> int:
    """Enable activation checkpointing on `model` (a transformers model, or a PeftModel over one), then turn its
    decoder layers' checkpointing on for a forward whose inputs hold more than `threshold_tokens` tokens and off for
    any other. Returns how many layers it switches (0: the model has none, nothing changed)."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    if not layers:
        return 0
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    had_input_grads = bool(getattr(base, "_require_grads_hooks", None) or getattr(base, "_require_grads_hook", None))
    base.activation_checkpointing_enable({"use_reentrant": False})  # transformers' own default
    if not had_input_grads:  # its embedding-output grad serves reentrant checkpointing only; a short step kept more
        base.disable_input_require_grads()

    def switch(module, args, kwargs) -> None:
        long_step = _tokens(args, kwargs) > threshold_tokens
        for layer in layers:
            layer.gradient_checkpointing = long_step

    model.register_forward_pre_hook(switch, with_kwargs=True)
    switch(model, (), {})  # off until a long batch comes
    return len(layers)


def _tokens(args, kwargs) -> int:
    """Tokens in a forward's batch: `input_ids` (rows x length; a padding-free batch is one row of them all) or,
    without them, `inputs_embeds` (rows x length x hidden)."""
    ids = kwargs.get("input_ids", args[0] if args else None)
    if ids is not None:
        return ids.numel()
    embeds = kwargs.get("inputs_embeds")
    return embeds.shape[:-1].numel() if embeds is not None else 0
