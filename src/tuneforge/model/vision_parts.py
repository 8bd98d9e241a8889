"""The three parts of a vision-language model — vision tower, projector, language model — by parameter-name prefix,
per family (LLaMA-Factory's `COMPOSITE_MODELS`, for transformers 5's module layout), and what freezing them means:
`freeze_vision_tower` (default on), `freeze_multi_modal_projector`, `freeze_language_model`. LoRA goes where the
weights are trained: on the language model, and on the other parts only when they are not frozen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.multimodal_args import MultimodalArguments


@dataclass(frozen=True)
class VisionParts:
    vision: tuple[str, ...]
    projector: tuple[str, ...]
    language: tuple[str, ...]

    def trained_whole(self, mm: MultimodalArguments) -> tuple[str, ...]:
        """The vision-side prefixes (tower, projector) whose weights train in full with full / freeze tuning."""
        return (() if mm.freeze_vision_tower else self.vision) + (
            () if mm.freeze_multi_modal_projector else self.projector
        )

    def frozen(self, mm: MultimodalArguments) -> tuple[str, ...]:
        """The prefixes whose weights stay as they are."""
        return (
            (self.vision if mm.freeze_vision_tower else ())
            + (self.projector if mm.freeze_multi_modal_projector else ())
            + (self.language if mm.freeze_language_model else ())
        )


QWEN_VL = VisionParts(
    vision=("model.visual.patch_embed", "model.visual.pos_embed", "model.visual.blocks", "model.visual.rotary_pos_emb"),
    projector=("model.visual.merger", "model.visual.deepstack_merger_list"),
    language=("model.language_model", "lm_head"),
)
TOWER_AND_PROJECTOR = VisionParts(
    vision=("model.vision_tower",),
    projector=("model.multi_modal_projector",),
    language=("model.language_model", "lm_head"),
)
# GLM-4.1V: LF names the patch embedding and blocks the tower and the merger the projector; the rest of its tower
# (learned positions, the norms) goes with the tower, and the conv that merges 2x2 patches into the text width with the
# projector, so that the freeze switches cover every weight.
GLM4V = VisionParts(
    vision=(
        "model.visual.patch_embed",
        "model.visual.embeddings",
        "model.visual.post_conv_layernorm",
        "model.visual.blocks",
        "model.visual.post_layernorm",
    ),
    projector=("model.visual.downsample", "model.visual.merger"),
    language=("model.language_model", "lm_head"),
)
# LLaVA-NeXT's learned row separator (`image_newline`) lays out the projected features: a projector weight. It is a
# bare parameter, so under LoRA it stays frozen even with the projector unfrozen (peft saves modules whole), as in LF.
LLAVA_NEXT = VisionParts(
    vision=("model.vision_tower",),
    projector=("model.multi_modal_projector", "model.image_newline"),
    language=("model.language_model", "lm_head"),
)
PARTS = {
    "qwen2_vl": QWEN_VL,
    "qwen2_5_vl": QWEN_VL,
    "qwen3_vl": QWEN_VL,
    "llava": TOWER_AND_PROJECTOR,
    "gemma3": TOWER_AND_PROJECTOR,
    "llava_next": LLAVA_NEXT,
    "glm4v": GLM4V,
}


def is_vision_config(config) -> bool:
    """A vision-language model's config (Qwen2-VL / Qwen3-VL, LLaVA, Gemma 3, ...): it nests a vision_config."""
    return getattr(config, "vision_config", None) is not None


def vision_parts(model_type: str) -> VisionParts:
    if model_type not in PARTS:
        raise UserError(
            f"vision fine-tuning of model type '{model_type}' is not supported yet",
            where="model_name_or_path",
            fix=f"use a model of the families {', '.join(PARTS)}",
        )
    return PARTS[model_type]


def unquantized_parts(config) -> tuple[str, ...]:
    """What QLoRA leaves in full precision: a VLM's vision tower and projector (small, and an unfrozen projector trains
    whole), as LLaMA-Factory does; nothing for a text model."""
    if not is_vision_config(config):
        return ()
    parts = vision_parts(config.model_type)
    return parts.vision + parts.projector


def freeze_parts(model, mm: MultimodalArguments) -> list[str]:
    """After full or freeze tuning set the language model's weights: the frozen parts stay as they are, the vision
    tower / projector train whole where their switch is off. The names of the parameters it froze."""
    parts = vision_parts(model.config.model_type)
    frozen, whole = parts.frozen(mm), parts.trained_whole(mm)
    names = []
    for name, param in model.named_parameters():
        if name.startswith(frozen):
            param.requires_grad_(False)
            names.append(name)
        elif name.startswith(whole):
            param.requires_grad_(True)
    if not any(param.requires_grad for param in model.parameters()):
        raise UserError(
            "the freeze switches leave no weight trainable",
            where="freeze_language_model",
            fix="set freeze_language_model: false, or unfreeze the vision tower / projector",
        )
    return names


def lora_module_names(model, mm: MultimodalArguments) -> list[str]:
    """The linear layers LoRA may target ("all"): those of the language model and of an unfrozen vision tower. Not
    the output head, and not the projector: an unfrozen projector trains whole (`projector_modules`)."""
    import torch  # heavy: only a run that builds adapters needs it

    parts = vision_parts(model.config.model_type)
    skip = parts.frozen(mm) + parts.projector + ("lm_head",)
    return [
        name
        for name, module in model.named_modules()
        if (isinstance(module, torch.nn.Linear) or type(module).__name__ == "HQQLinear") and not name.startswith(skip)
    ]


def projector_modules(model, mm: MultimodalArguments) -> list[str]:
    """With LoRA, an unfrozen projector (freeze_multi_modal_projector: false) trains whole and is saved with the
    adapter (peft's modules_to_save): it is small, and it is what maps the pictures into the text. A module list
    (Qwen3-VL's deepstack mergers) is given by its items, which peft can wrap."""
    import torch

    if mm.freeze_multi_modal_projector:
        return []
    names = []
    for prefix in vision_parts(model.config.model_type).projector:
        try:
            module = model.get_submodule(prefix)
        except AttributeError:  # Qwen2-VL has no deepstack mergers; LLaVA-NeXT's image_newline is no module
            continue
        if isinstance(module, torch.nn.ModuleList):
            names += [f"{prefix}.{i}" for i in range(len(module))]
        else:
            names.append(prefix)
    return names


def lora_short_names(model, mm: MultimodalArguments) -> list[str]:
    """The short names (q_proj, qkv, linear_1, ...) of the linear layers LoRA may target on this VLM."""
    return sorted({name.split(".")[-1] for name in lora_module_names(model, mm)})


def lora_targets(model, mm: MultimodalArguments, names: list[str]) -> list[str]:
    """peft's `target_modules` for a VLM: the full names of the linear layers called `names` outside the frozen
    parts (a CLIP tower has q_proj / v_proj too, and a frozen tower must get no adapter; short names alone would
    also catch a Qwen merger's `0` in every `layers.0`)."""
    return [name for name in lora_module_names(model, mm) if name.split(".")[-1] in names]
