"""APOLLO's `apollo_scale_front`: apply the update scale (sqrt(apollo_scale)) before the norm-growth limiter.

transformers builds APOLLO itself (train/optim.py passes the other APOLLO keys through `optim_args`), but its
`optim_args` reach only the parameter groups, while apollo-torch reads `scale_front` from the optimizer object.
LLaMA-Factory puts `scale_front` in the APOLLO parameter group, where apollo-torch 1.0 never reads it. This callback
sets both before the first step: the group carries it (as LLaMA-Factory's), and the optimizer honours it. Layer-wise
APOLLO keeps one optimizer per parameter (transformers' `LayerWiseDummyOptimizer.optimizer_dict`): each one is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transformers import TrainerCallback

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig


def apollo_optimizers(optimizer) -> list:
    """The APOLLO optimizers behind the Trainer's optimizer (accelerate's wrapper, transformers' layer-wise dummy)."""
    inner = getattr(optimizer, "optimizer", optimizer)  # AcceleratedOptimizer wraps the real one
    per_param = getattr(inner, "optimizer_dict", None)
    return list(per_param.values()) if per_param else [inner]


class ApolloScaleFront(TrainerCallback):
    def __init__(self, scale_front: bool):
        self.scale_front = scale_front

    def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
        for opt in apollo_optimizers(optimizer):
            opt.scale_front = self.scale_front
            for group in opt.param_groups:
                if "proj_type" in group:  # an APOLLO group (the projected matrices)
                    group["scale_front"] = self.scale_front


def apollo_callbacks(cfg: RunConfig) -> list:
    ft = cfg.finetuning
    return [ApolloScaleFront(ft.apollo_scale_front)] if ft.use_apollo and ft.apollo_scale_front else []
