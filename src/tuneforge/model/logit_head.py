"""Whether a model's logits are its LM head's matmul and nothing more, read from its config (a dict from
config.json or a transformers config), and whether the head's weight is whole in this process: what the sliced SFT
loss (train/trained_token_loss.py) and the memory estimate both ask."""

from __future__ import annotations

from tuneforge.config.backends import deepspeed_from_environment
from tuneforge.config.engines import fsdp_from_environment

# Config fields by which a model changes its logits after the head (soft-capping, scaling)
LOGIT_TRANSFORMS = (
    "final_logit_softcapping",
    "logit_scale",
    "output_multiplier",
    "lm_head_multiplier",
    "logits_scaling",
)


def plain_logit_head(config) -> bool:
    """No logit transform and no router loss in `config` (a dict or a transformers config)."""
    read = config.get if isinstance(config, dict) else lambda key: getattr(config, key, None)
    return not read("output_router_logits") and all(read(name) is None for name in LOGIT_TRANSFORMS)


def head_kept_whole(deepspeed, fsdp, torch_compile) -> bool:
    """The head's weight can be read outside its module: not sharded by DeepSpeed or FSDP (from the run's settings
    or `accelerate launch`'s environment) and not compiled."""
    return not (deepspeed or fsdp or torch_compile or deepspeed_from_environment() or fsdp_from_environment())
