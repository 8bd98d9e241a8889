"""LLaMA Pro (Wu et al. 2024) block expansion, as LLaMA-Factory's scripts/llama_pro.py does it.

After every `num_layers // num_expand` layers a copy of the last one is inserted, with its output projections
(o_proj, down_proj) zeroed: the copy adds nothing to the residual stream, so the expanded model computes exactly what
the original did. Training then updates only the copies (`use_llama_pro: true`, `freeze_trainable_layers: N`),
which are the layers `expanded_layer_ids` names.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tuneforge.errors import UserError
from tuneforge.utils.logging import get_logger

logger = get_logger(__name__)
LAYER_KEY = re.compile(r"^(.*?\blayers\.)(\d+)(\..*)$")  # model.layers.<i>.<rest>: a decoder block's weight
ZEROED = ("o_proj", "down_proj")  # the block's writes into the residual stream
KEPT_FILES = ("generation_config.json",)  # besides the tokenizer, which is re-saved


def expanded_layer_ids(num_layers: int, num_expanded: int, where: str = "freeze_trainable_layers") -> range:
    """Ids of the inserted blocks in a model of `num_layers` (after expansion) with `num_expanded` of them: the last
    layer of each group of `num_layers // num_expanded` (LLaMA-Factory's rule)."""
    if num_expanded <= 0 or num_layers % num_expanded:
        raise UserError(
            f"the model has {num_layers} layers, which {num_expanded} expanded blocks cannot split evenly",
            where=where,
            fix="set it to the number of blocks `tuneforge llama-pro --num-expand` added (a divisor of the layers)",
        )
    stride = num_layers // num_expanded
    return range(stride - 1, num_layers + stride - 1, stride)


def _expanded_state_dict(state_dict: dict, num_layers: int, num_expand: int) -> dict:
    """The new state dict: each original block renumbered, a zero-output copy after every `split` blocks."""
    import torch  # the caller has loaded a model already

    by_layer: dict[int, list[tuple[str, str, object]]] = {}
    out = {}
    for key, value in state_dict.items():
        match = LAYER_KEY.match(key)
        if match:
            by_layer.setdefault(int(match.group(2)), []).append((match.group(1), match.group(3), value))
    split, new_id = num_layers // num_expand, 0
    for i in range(num_layers):
        for head, rest, value in by_layer.get(i, []):
            out[f"{head}{new_id}{rest}"] = value
        new_id += 1
        if (i + 1) % split == 0:
            zeroed = 0
            for head, rest, value in by_layer.get(i, []):
                is_output = any(name in rest for name in ZEROED)
                out[f"{head}{new_id}{rest}"] = torch.zeros_like(value) if is_output else value.clone()
                zeroed += is_output
            if not zeroed:
                raise UserError(
                    "this architecture's blocks have no o_proj / down_proj to zero: the copies would change the model",
                    where="MODEL_DIR",
                    fix="expand a LLaMA-style model (Llama, Qwen2, Mistral, Yi ...)",
                )
            new_id += 1
    for key, value in state_dict.items():
        if not LAYER_KEY.match(key):
            out[key] = value
    return out


def expand_model(model_dir: str | Path, out_dir: str | Path, num_expand: int) -> Path:
    """Write the expanded model (safetensors, config, tokenizer) to out_dir; returns out_dir."""
    import torch  # heavy: only this command loads a model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not (model_dir / "config.json").is_file():
        raise UserError("not a model folder (no config.json)", where=f"MODEL_DIR ({model_dir})")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UserError("the output folder is not empty", where=f"OUT_DIR ({out_dir})", fix="name a new folder")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto")
    config = model.config
    num_layers = config.num_hidden_layers
    if num_expand <= 0 or num_layers % num_expand:
        raise UserError(
            f"the model has {num_layers} layers: --num-expand must divide it",
            where="--num-expand",
            fix=f"use a divisor of {num_layers}",
        )
    state_dict = model.state_dict()
    if getattr(config, "tie_word_embeddings", False):
        state_dict.pop("lm_head.weight", None)  # tied to embed_tokens: saved once
    expanded = _expanded_state_dict(state_dict, num_layers, num_expand)

    types = getattr(config, "layer_types", None)
    if isinstance(types, list) and len(types) == num_layers:  # one entry per layer (sliding / full attention)
        split = num_layers // num_expand
        config.layer_types = [t for i, t in enumerate(types) for t in ([t, t] if (i + 1) % split == 0 else [t])]
    config.num_hidden_layers = num_layers + num_expand
    with torch.device("meta"):  # the structure only: weights come from `expanded`
        new_model = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
    missing, unexpected = new_model.load_state_dict(expanded, strict=False, assign=True)
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise UserError(
            f"the expanded weights do not fit the model class: missing {missing[:3]}, unexpected {unexpected[:3]}",
            where=f"MODEL_DIR ({model_dir})",
        )
    new_model.tie_weights()
    out_dir.mkdir(parents=True, exist_ok=True)
    new_model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out_dir)
    for name in KEPT_FILES:
        if (model_dir / name).is_file() and not (out_dir / name).is_file():
            shutil.copy2(model_dir / name, out_dir / name)
    logger.info(
        "expanded %d layers to %d; train the new blocks with: model_name_or_path: %s, finetuning_type: freeze, "
        "freeze_trainable_layers: %d, use_llama_pro: true",
        num_layers,
        num_layers + num_expand,
        out_dir,
        num_expand,
    )
    return out_dir
