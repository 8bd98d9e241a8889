"""Keys our users write that say something another key says: LLaMA-Factory's switches and names that transformers
moved. Each is rewritten to the key that carries its meaning, before anything is checked; a key the user also set
under the new name wins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuneforge.config.coerce import coerce
from tuneforge.errors import UserError

# Moved with no loss of meaning.
RENAMED = {"evaluation_strategy": "eval_strategy", "no_cuda": "use_cpu"}


def apply_aliases(flat: dict[str, Any], where: Callable[[str], str]) -> None:
    """Rewrite `flat` (the keys as written) in place."""
    for old, new in RENAMED.items():
        if old in flat:
            flat.setdefault(new, flat.pop(old))
    if coerce(flat.get("pure_bf16", False), bool, where("pure_bf16")):
        flat.setdefault("compute_type", "pure_bf16")
    if coerce(flat.get("block_diag_attn", False), bool, where("block_diag_attn")):
        flat.setdefault("neat_packing", True)  # LF derives block_diag_attn from neat_packing
    if "warmup_ratio" in flat:  # transformers 5 reads a float warmup_steps < 1 as a ratio (1.0 would be one step)
        ratio = coerce(flat.pop("warmup_ratio"), float, where("warmup_ratio"))
        if not 0 <= ratio < 1:
            raise UserError(
                f"warmup_ratio must be in [0, 1), got {ratio}",
                where=where("warmup_ratio"),
                fix="use e.g. 0.1, or warmup_steps for a number of steps",
            )
        flat.setdefault("warmup_steps", ratio)
    if flat.pop("group_by_length", False):
        flat.setdefault("train_sampling_strategy", "group_by_length")
    if isinstance(flat.get("fsdp"), list):  # LF's configs write a list; transformers 5 reads a spaced string
        flat["fsdp"] = " ".join(str(option) for option in flat["fsdp"])
    if "fsdp_transformer_layer_cls_to_wrap" in flat:  # transformers 4's key, now inside fsdp_config
        layers = flat.pop("fsdp_transformer_layer_cls_to_wrap")
        fsdp_config = flat.get("fsdp_config")
        if isinstance(fsdp_config, dict):
            fsdp_config.setdefault("transformer_layer_cls_to_wrap", layers)
        elif fsdp_config is None:
            flat["fsdp_config"] = {"transformer_layer_cls_to_wrap": layers}
        else:
            raise UserError(
                "fsdp_transformer_layer_cls_to_wrap goes inside fsdp_config, which is a file here",
                where=where("fsdp_transformer_layer_cls_to_wrap"),
                fix="put transformer_layer_cls_to_wrap in that file",
            )
