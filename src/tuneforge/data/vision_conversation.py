"""A conversation with images, made ready for the text encoders: its images loaded (data/media.py) and each `<image>`
placeholder replaced by the family's image tokens for that image (data/image_tokens.py), in order across the turns,
as LLaMA-Factory's mm_plugin does before its template encodes the messages. The encoders (data/sft.py, ...) then
see plain text whose image tokens the tokenizer reads as single ids; the loaded images go to the collator, which
turns them into pixel values with the same processor."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuneforge.data.conversation import Conversation
from tuneforge.data.image_tokens import expand_images, image_token_counts
from tuneforge.data.media import load_images
from tuneforge.errors import UserError

# A vision row's image references (paths or data URLs), loaded per batch by the collator. Not "images": TRL's
# trainers take a column of that name for pictures they process themselves.
IMAGES_COLUMN = "image_refs"

if TYPE_CHECKING:
    from tuneforge.config.multimodal_args import MultimodalArguments


@dataclass
class VisionEncoding:
    """What encoding rows with images needs beyond the template: the vision-language model's processor and the image
    settings (image_max_pixels, ...). A recipe binds it to the template when the model is a VLM (`bind_vision`); the
    stage encoders (data/stage_sets.py) read it, in this process or a worker's (it travels with the template)."""

    processor: Any
    mm: MultimodalArguments

    def settings(self) -> dict:
        """What decides the encoding besides the template and tokenizer (the tokenized-data cache's fingerprint)."""
        sizes = {"image_max_pixels": self.mm.image_max_pixels, "image_min_pixels": self.mm.image_min_pixels}
        return {**sizes, "image_processor": self.processor.image_processor.to_dict()}


def bind_vision(template, encoding: VisionEncoding) -> None:
    template.vision = encoding


def bound_vision(template) -> VisionEncoding | None:
    return getattr(template, "vision", None)


def image_token_count(conv: Conversation, template) -> int:
    """How many image tokens the expanded conversation holds (its prompt, with pairwise data): the encoded ids must
    hold as many, or cutoff_len cut through a picture."""
    token = template.mm_plugin["image_token"]
    return sum(m.content.count(token) for m in conv.messages)


def with_image_tokens(conv: Conversation, template, processor, mm: MultimodalArguments) -> tuple[Conversation, list]:
    """(the conversation with its image tokens in place, its loaded images). A conversation without images comes
    back as it is."""
    if not conv.images:
        return conv, []
    plugin = template.mm_plugin
    if not plugin:
        raise UserError(
            f"template '{template.name}' is a text template, and this row has images",
            where=conv.source or "template",
            fix="use the vision model's template (e.g. qwen2_vl, qwen3_vl, llava, gemma3)",
        )
    images = load_images(conv, mm, plugin["name"])
    counts = image_token_counts(plugin, processor, images)
    turns = [*conv.messages, *([conv.rejected] if conv.rejected else [])]
    expanded = expand_images([m.content for m in turns], plugin, processor, counts)
    messages = [dataclasses.replace(m, content=text) for m, text in zip(turns, expanded, strict=True)]
    rejected = messages.pop() if conv.rejected else None
    return dataclasses.replace(conv, messages=messages, rejected=rejected), images
