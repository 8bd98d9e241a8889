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
        mm = self.mm
        images = [load_image(ref, mm.image_max_pixels, mm.image_min_pixels, self.plugin) for ref in refs]
        batch.update(image_inputs(self.processor, batch["input_ids"].tolist(), images))
        return batch


def image_inputs(processor, ids: list[list[int]], images: list) -> dict:
    """What the processor's `__call__` adds to these rows' input_ids / attention_mask: its image processor's outputs
    for the pictures, in row order (less what the model does not take, e.g. Gemma 3's num_crops), and, where the
    processor returns them, the token types (Qwen-VL's `mm_token_type_ids` for M-RoPE; Gemma 3's `token_type_ids`
    for its bidirectional attention over a picture's tokens). Also the chat engine's (chat/vision_inputs.py)."""
    import torch  # heavy: the process that batches imports it, not `import`

    out = dict(processor.image_processor(images=images, return_tensors="pt")) if images else {}
    for name in getattr(processor, "unused_input_names", None) or ():
        out.pop(name, None)
    if getattr(processor, "return_mm_token_type_ids", False):
        key = "mm_token_type_ids" if "mm_token_type_ids" in processor.model_input_names else "token_type_ids"
        out[key] = torch.tensor(processor.create_mm_token_type_ids(ids), dtype=torch.long)
    return out


def with_image_batches(collator, template, copies: int = 1):
    """The stage's collator, wrapped to add the pictures' pixel values when the template carries a vision model's
    processor (train/common.py binds it); the collator itself otherwise. `copies`: see VisionCollator."""
    vision = bound_vision(template)
    if vision is None:
        return collator
    return VisionCollator(collator, vision.processor, vision.mm, template.mm_plugin["name"], copies)
