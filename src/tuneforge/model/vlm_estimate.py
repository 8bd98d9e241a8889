"""`tuneforge estimate` for a vision-language model (a config.json with a vision_config): its parameters by part
(vision tower, projector, language model), what the freeze switches leave trainable, and the image tokens a sample
adds to the sequence.

The parts' sizes come from the model built on the meta device from config.json: exact for every family transformers
knows, and no weight is read or allocated. Trainable parameters follow model/vision_parts: the vision tower and the
projector train only when freeze_vision_tower / freeze_multi_modal_projector are off, the language model unless
freeze_language_model is on; LoRA / OFT go on the linear layers outside the frozen parts (lora_module_names).

Images: one per sample, at image_max_pixels. The Qwen families cut it into patch_size x patch_size patches and merge
spatial_merge_size^2 of them into one token (pixels / (patch_size * merge)^2 tokens); LLaVA and Gemma 3 resize every
picture to the tower's image_size, a fixed count per image (image_seq_length / mm_tokens_per_image).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from tuneforge.model.vision_parts import lora_module_names, projector_modules, vision_parts

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

QWEN_VL = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
_LAYER = re.compile(r"\.(\d+)\.")  # the first layer index in a parameter name (as model/adapters.setup_freeze)


@dataclass
class VisionEstimate:
    parts: dict[str, int]  # parameters of the vision tower, the projector, the language model (with its head)
    linear: int  # of those, the linear layers' weights (what QLoRA quantises)
    trainable: int
    tower_trained: bool  # freeze_vision_tower off: the tower's activations are kept for backward
    image_tokens: int  # per sample, added to the sequence
    patches: int  # per image, through the vision tower
    tower: dict[str, int]  # the vision tower's hidden / intermediate sizes and layers (its activations)
    assumption: str  # how the image tokens were counted, for the output


def is_vision_folder(path: str) -> bool:
    """Whether the folder's config.json is a vision-language model's (it nests a vision_config)."""
    config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    return isinstance(config.get("vision_config"), dict)


def text_config(path: str) -> dict[str, Any]:
    """The language model's config with the family's defaults filled in: a VLM's config.json often leaves them out
    (llava-1.5's text_config has no hidden_size: LlamaConfig's default is the 7B model's)."""
    from transformers import AutoConfig  # heavy: only a VLM's estimate needs it

    return AutoConfig.from_pretrained(path).get_text_config().to_dict()


def freeze_switches(cfg: RunConfig) -> SimpleNamespace:
    """The freeze_* keys, with their defaults where the config has no multimodal group (or not these keys yet)."""
    mm = getattr(cfg, "multimodal", None)
    return SimpleNamespace(
        freeze_vision_tower=getattr(mm, "freeze_vision_tower", True),
        freeze_multi_modal_projector=getattr(mm, "freeze_multi_modal_projector", True),
        freeze_language_model=getattr(mm, "freeze_language_model", False),
    )


def meta_model(path: str):
    """The model with meta tensors: every shape, no memory (the last few kept: `gradient_checkpointing: auto`
    estimates twice)."""
    file = Path(path) / "config.json"
    return _meta_model(str(file.resolve()), file.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _meta_model(config_file: str, mtime_ns: int):
    import torch  # heavy: only a VLM's estimate builds the model
    from transformers import AutoConfig, AutoModelForImageTextToText

    config = AutoConfig.from_pretrained(str(Path(config_file).parent))
    with torch.device("meta"):
        return AutoModelForImageTextToText.from_config(config)


def processor_max_pixels(path: str) -> int | None:
    """A Qwen image processor's largest picture (max_pixels, or size.longest_edge as transformers 5 saves it)."""
    for name in ("preprocessor_config.json", "processor_config.json"):
        file = Path(path) / name
        if file.is_file():
            data = json.loads(file.read_text(encoding="utf-8"))
            data = data.get("image_processor", data)
            value = data.get("max_pixels") or (data.get("size") or {}).get("longest_edge")
            if value:
                return int(value)
    return None


def image_tokens(config: dict[str, Any], image_max_pixels: int, cap: int | None = None) -> tuple[int, int, str]:
    """(tokens one image adds to the sequence, patches the vision tower sees, the rule used). `cap`: the
    processor's own largest picture (Qwen), which a larger image_max_pixels does not pass."""
    vision, model_type = config["vision_config"], config.get("model_type")
    if model_type == "llava_next":
        return _tiled_tokens(config)
    if model_type in (*QWEN_VL, "glm4v"):
        if model_type == "glm4v" and cap:
            cap //= 2  # GLM-4.1V's longest_edge counts a still picture's two time frames
        patch, merge = int(vision.get("patch_size", 14)), int(vision.get("spatial_merge_size", 2))
        pixels = min(image_max_pixels, cap or image_max_pixels)
        tokens = max(1, pixels // (patch * merge) ** 2)
        capped = f" (the processor's max_pixels={cap})" if pixels < image_max_pixels else ""
        rule = f"1 image/sample at image_max_pixels={image_max_pixels}{capped}: {pixels} / ({patch}x{merge})^2"
        return tokens, tokens * merge * merge, f"{rule} = {tokens} tokens"
    patch, size = int(vision.get("patch_size", 14)), int(vision.get("image_size", 224))
    patches = (size // patch) ** 2
    if model_type == "gemma3":
        tokens = int(config.get("mm_tokens_per_image", 256))
    else:  # LLaVA: one token per patch (the CLS token too with the "full" feature strategy)
        full = config.get("vision_feature_select_strategy") == "full"
        tokens = int(config.get("image_seq_length") or patches + full)
        patches += 1  # CLIP's CLS token
    return tokens, patches, f"1 image/sample, a fixed {tokens} tokens per image ({model_type})"


def _tiled_tokens(config: dict[str, Any]) -> tuple[int, int, str]:
    """LLaVA-NeXT: the picture at the tower's size plus its tiles at the largest image_grid_pinpoints (an upper bound:
    a picture of another shape pads fewer tiles), one newline token per tiled row."""
    vision = config["vision_config"]
    size, patch = int(vision.get("image_size", 336)), int(vision.get("patch_size", 14))
    side = size // patch
    height, width = max(config.get("image_grid_pinpoints") or [[size, size]], key=lambda hw: hw[0] * hw[1])
    rows, cols = height // size * side, width // size * side
    tokens = side * side + rows * cols + rows
    patches = (side * side + 1) * (1 + (height // size) * (width // size))
    return tokens, patches, f"1 image/sample, at most {tokens} tokens per image (llava_next, the largest tiling)"


def tower_shape(config: dict[str, Any]) -> dict[str, int]:
    """Hidden size, MLP size and layers of the vision tower (Qwen2-VL names them embed_dim / mlp_ratio / depth)."""
    vision = config["vision_config"]
    hidden = int(vision.get("embed_dim") or vision.get("hidden_size"))
    inter = int(vision.get("intermediate_size") or hidden * vision.get("mlp_ratio", 4))
    layers = int(vision.get("depth") or vision.get("num_hidden_layers"))
    return {"hidden": hidden, "intermediate": inter, "layers": layers}


def _lora_targets(target: str) -> set[str] | None:
    names = {t.strip() for t in (target or "all").split(",") if t.strip()}
    return None if "all" in names else names


def _trainable(model, parts, switches, ft, language_layers: int) -> int:
    """What training with these switches and this finetuning_type updates."""

    frozen = parts.frozen(switches)
    if ft.finetuning_type == "full":
        return sum(p.numel() for name, p in model.named_parameters() if not name.startswith(frozen))
    if ft.finetuning_type == "freeze":
        # the last (first) k layers outside the frozen parts, and an unfrozen tower / projector whole
        # (model/adapters.prepare_trainable)
        k = int(ft.freeze_trainable_layers)
        layer_ids = range(max(0, language_layers - k), language_layers) if k > 0 else range(min(-k, language_layers))
        whole = parts.trained_whole(switches)
        count = 0
        for name, p in model.named_parameters():
            match = _LAYER.search(name)
            in_layer = match is not None and int(match.group(1)) in layer_ids and not name.startswith(frozen)
            count += p.numel() if in_layer or name.startswith(whole) else 0
        return count
    oft = ft.finetuning_type == "oft"
    wanted = _lora_targets(ft.oft_target if oft else ft.lora_target)
    count = 0
    for name in lora_module_names(model, switches):  # model/adapters.py: the language model, an unfrozen tower
        module = model.get_submodule(name)
        if wanted is not None and name.rsplit(".", 1)[-1] not in wanted:
            continue
        if oft:
            block = int(ft.oft_block_size) or max(1, module.in_features // max(1, int(ft.oft_rank)))
            count += module.in_features * (block - 1) // 2
        else:
            count += int(ft.lora_rank) * (module.in_features + module.out_features)
    for name in projector_modules(model, switches):  # an unfrozen projector trains whole beside the adapter
        count += sum(p.numel() for p in model.get_submodule(name).parameters())
    return count


def estimate_vision(cfg: RunConfig) -> VisionEstimate:
    """The VLM's parts, trainable parameters and image tokens, from its config.json (a local folder)."""
    import torch

    model = meta_model(cfg.model.model_name_or_path)
    config = model.config.to_dict()  # with the defaults config.json leaves out
    parts = vision_parts(config.get("model_type"))
    language_layers = model.config.get_text_config().num_hidden_layers
    sizes = {"vision": 0, "projector": 0, "language": 0}
    for name, p in model.named_parameters():  # tied weights once, as model.parameters() counts them
        part = "vision" if name.startswith(parts.vision) else "projector" if name.startswith(parts.projector) else None
        sizes[part or "language"] += p.numel()
    linear = sum(  # what QLoRA quantises: every linear weight but the output head
        m.weight.numel() for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n != "lm_head"
    )
    switches = freeze_switches(cfg)
    trainable = _trainable(model, parts, switches, cfg.finetuning, language_layers)
    max_pixels = getattr(getattr(cfg, "multimodal", None), "image_max_pixels", 768 * 768)
    tokens, patches, rule = image_tokens(config, int(max_pixels), processor_max_pixels(cfg.model.model_name_or_path))
    return VisionEstimate(
        sizes, linear, trainable, not switches.freeze_vision_tower, tokens, patches, tower_shape(config), rule
    )
