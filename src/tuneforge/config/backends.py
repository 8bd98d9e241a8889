"""Which optional backends (bitsandbytes, DeepSpeed, HQQ) a config uses, read before any library is imported.

The CLI holds back the others (utils/imports.py): a plain LoRA run then imports none of them, prints none of their
lines and starts seconds sooner. The rules err on the side of keeping a backend: whatever we cannot see (a hub
model not in the cache, another inference engine) keeps all of them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tuneforge.config.loader import read_flat
from tuneforge.utils.imports import OPTIONAL_BACKENDS, hold_back

# `optim` names of transformers' that run on bitsandbytes (adamw_bnb_8bit, paged_*, lion_*, ademamix*, rmsprop_bnb*)
BNB_OPTIM_PARTS = ("bnb", "8bit", "32bit", "paged", "lion", "ademamix")
MODEL_KEYS = ("model_name_or_path", "ref_model", "reward_model")


def backends_used(flat: dict[str, Any]) -> set[str]:
    """The optional backends a flat config (keys as written) may import."""
    if flat.get("infer_backend", "huggingface") != "huggingface":
        return set(OPTIONAL_BACKENDS)  # vllm / sglang bring their own imports: we do not know them
    used = set()
    bits, method = flat.get("quantization_bit"), flat.get("quantization_method", "bnb")
    if bits is not None:
        used.add("hqq" if method == "hqq" else "bitsandbytes")
    if flat.get("ref_model_quantization_bit") is not None:  # ref_model loads with the quantization_method
        used.add("hqq" if method == "hqq" else "bitsandbytes")
    if flat.get("reward_model_quantization_bit") is not None:  # always bitsandbytes (train/ppo_reward.py)
        used.add("bitsandbytes")
    optim = str(flat.get("optim") or "").lower()
    if any(part in optim for part in BNB_OPTIM_PARTS) or flat.get("use_galore") or flat.get("use_apollo"):
        used.add("bitsandbytes")  # galore_torch and apollo_torch import bitsandbytes for their 8-bit optimizers
    if flat.get("deepspeed") or deepspeed_from_environment():
        used.add("deepspeed")
    for key in MODEL_KEYS:
        if flat.get(key) and _maybe_quantized(str(flat[key]), flat):
            used |= {"bitsandbytes", "hqq"}  # a pre-quantized checkpoint loads through its own backend
    return used


def hold_back_unused(path: str | Path | None, overrides: list[str] | dict[str, Any] | None = None) -> list[str]:
    """For a process that runs this one config: make the optional backends it does not use unimportable."""
    flat, _ = read_flat(path, overrides)
    used = backends_used(flat)
    return hold_back(name for name in OPTIONAL_BACKENDS if name not in used)


def deepspeed_from_environment() -> bool:
    """`accelerate launch` with a DeepSpeed config tells the Trainer through the environment."""
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() in ("1", "true", "yes") or bool(
        os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")
    )


def _maybe_quantized(name: str, flat: dict[str, Any], depth: int = 0) -> bool:
    """True unless we can read the model's config.json and it has no quantization_config."""
    config = _config_json(name, flat)
    if config is None:
        adapter = Path(name) / "adapter_config.json"  # an adapter (an rm run): look at its base
        if depth == 0 and adapter.is_file():
            try:
                base = json.loads(adapter.read_text(encoding="utf-8")).get("base_model_name_or_path")
            except (OSError, ValueError):
                return True
            return not base or _maybe_quantized(str(base), flat, depth + 1)
        return True
    return bool(config.get("quantization_config")) if isinstance(config, dict) else True


def _config_json(name: str, flat: dict[str, Any]) -> dict | None:
    path = Path(name) / "config.json"
    if not Path(name).exists():
        try:  # a hub id: its config.json if the cache has it (never a download)
            from huggingface_hub import try_to_load_from_cache  # only a hub id needs it

            cached = try_to_load_from_cache(
                name, "config.json", cache_dir=flat.get("cache_dir"), revision=flat.get("model_revision") or None
            )
        except ValueError:  # not a valid hub id either: loading the model reports that, with its reason
            return None
        path = Path(cached) if isinstance(cached, str) else path
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
