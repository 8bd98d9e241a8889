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
PARTS = {
    "qwen2_vl": QWEN_VL,
    "qwen2_5_vl": QWEN_VL,
    "qwen3_vl": QWEN_VL,
    "llava": TOWER_AND_PROJECTOR,
    "gemma3": TOWER_AND_PROJECTOR,
}


def vision_parts(model_type: str) -> VisionParts:
    if model_type not in PARTS:
        raise UserError(
            f"vision fine-tuning of model type '{model_type}' is not supported yet",
            where="model_name_or_path",
            fix=f"use a model of the families {', '.join(PARTS)}",
        )
    return PARTS[model_type]


def freeze_parts(model, mm: MultimodalArguments) -> list[str]:
    """Freeze what `mm` says (for full fine-tuning); the names of the parameters it froze."""
    frozen = vision_parts(model.config.model_type).frozen(mm)
    names = []
    for name, param in model.named_parameters():
        if name.startswith(frozen):
            param.requires_grad_(False)
            names.append(name)
    return names


def lora_module_names(model, mm: MultimodalArguments) -> list[str]:
    """The linear layers LoRA may target ("all"): those outside the frozen parts, the output head excepted."""
    import torch  # heavy: only a run that builds adapters needs it

    frozen = vision_parts(model.config.model_type).frozen(mm)
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not name.startswith(frozen) and not name.startswith("lm_head")
    ]
