"""Load a model for scoring and generation: base + adapters (merged when not quantized), the run's template."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuneforge.data.template import template_for
from tuneforge.data.vision_conversation import VisionEncoding, bind_vision
from tuneforge.model.adapters import adapter_paths, load_adapters
from tuneforge.model.loader import load_model, load_tokenizer
from tuneforge.model.new_tokens import resize_embeddings
from tuneforge.model.param_status import print_param_status
from tuneforge.model.vision_parts import is_vision_config
from tuneforge.model.vlm_processor import load_processor
from tuneforge.utils.devices import has_cuda, resolve_dtype
from tuneforge.utils.run_folder import template_from_run

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig


@dataclass
class Loaded:
    model: Any
    tokenizer: Any
    template: Any
    device: str


def load_for_inference(cfg: RunConfig) -> Loaded:
    """Tokenizer (left padding), template (the config's, else the one the adapter's run trained with), model."""
    adapters = adapter_paths(cfg.model)
    tokenizer = load_tokenizer(cfg.model)
    tokenizer.padding_side = "left"
    template = template_for(cfg.data, tokenizer, name=cfg.data.template or template_from_run(adapters))
    template.fix_tokenizer(tokenizer)
    model = load_model(cfg.model, resolve_dtype(cfg.model.infer_dtype, "infer_dtype"), for_training=False)
    resize_embeddings(model, tokenizer, cfg.model)  # as training did: new tokens, a template's stop words
    if adapters:
        model = load_adapters(model, adapters, is_trainable=False)
        if cfg.model.quantization_bit is None:
            model = model.merge_and_unload()
    device = "cuda" if has_cuda() else "cpu"
    if cfg.model.quantization_bit is None:  # a quantized model stays where it loaded (quantization_device_map)
        model = model.to(device)
    print_param_status(model, cfg.model.print_param_status)
    if is_vision_config(model.config) and getattr(template, "mm_plugin", None):  # its rows' pictures: as in training
        bind_vision(template, VisionEncoding(load_processor(cfg.model.model_name_or_path), cfg.multimodal))
    return Loaded(model=model.eval(), tokenizer=tokenizer, template=template, device=device)


def forward_kwargs(model) -> set[str]:
    """Names the model's forward accepts (the base model's, under a peft wrapper)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return set(inspect.signature(base.forward).parameters)


def left_pad(rows: list[list[int]], pad_id: int, device: str, names: set[str]) -> dict:
    """input_ids / attention_mask padded on the left, plus position_ids that start at 0 on each row's first token."""
    import torch  # heavy: only a process that runs a model imports it

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    batch = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
    if "position_ids" in names:
        batch["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0).to(device)
    return batch
