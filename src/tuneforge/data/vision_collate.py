"""Batching rows that carry images: the text part as the text collator pads it, plus the pictures' pixel values from
the model's image processor. The rows keep only references to their images (`images`: paths or data URLs); the
pictures are loaded and resized here, per batch (data/media.py), so a data set never holds them all in memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuneforge.data.media import load_image
from tuneforge.data.vision_conversation import IMAGES_COLUMN, bound_vision

if TYPE_CHECKING:
    from tuneforge.config.multimodal_args import MultimodalArguments


@dataclass
class VisionCollator:
    """`text_collator` (data/collate.py) for the ids; `processor` (model/vlm_processor.py) for the pictures: its
    image processor's outputs (pixel_values, image_grid_thw, ...) are added to the batch, images in row order."""

    text_collator: Any
    processor: Any
    mm: MultimodalArguments
    plugin: str | None = None  # the template's mm_plugin name: its resize rule (data/media.py)
    copies: int = 1  # the text collator's rows per feature: 2 for preference pairs (all chosen rows, then rejected)

    def __call__(self, features: list[dict]) -> dict:
        text_rows = [{k: v for k, v in f.items() if k != IMAGES_COLUMN} for f in features]
        batch = self.text_collator(text_rows)
        refs = [ref for f in features for ref in (f.get(IMAGES_COLUMN) or [])] * self.copies
        if refs:
            mm = self.mm
            images = [load_image(ref, mm.image_max_pixels, mm.image_min_pixels, self.plugin) for ref in refs]
            batch.update(self.processor.image_processor(images=images, return_tensors="pt"))
        if hasattr(self.processor, "create_mm_token_type_ids"):  # which ids are image tokens (Qwen's M-RoPE needs it)
            import torch  # heavy: the process that batches imports it, not `import`

            types = self.processor.create_mm_token_type_ids(batch["input_ids"].tolist())
            batch["mm_token_type_ids"] = torch.tensor(types, dtype=torch.long)
        return batch


def with_image_batches(collator, template, copies: int = 1):
    """The stage's collator, wrapped to add the pictures' pixel values when the template carries a vision model's
    processor (train/common.py binds it); the collator itself otherwise. `copies`: see VisionCollator."""
    vision = bound_vision(template)
    if vision is None:
        return collator
    return VisionCollator(collator, vision.processor, vision.mm, template.mm_plugin["name"], copies)
