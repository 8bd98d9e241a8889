"""`tuneforge preview`: the first samples exactly as training encodes them, trained tokens marked.

A row with images: for a vision-language model each `<image>` becomes the family's image tokens, as training expands
them (data/vision_conversation.py; a run of one image token shows as `<|image_pad|>×N`); for a text model the row's
text is shown with its `<image>` placeholders as they are. The Web UI shows the images beside (`preview_blocks`)."""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from tuneforge.data.formats import load_conversations
from tuneforge.data.media import refuse_vision
from tuneforge.data.preview import render_label_mask, thinking_line
from tuneforge.data.registry import get_dataset_attrs
from tuneforge.data.sft import encode_sft_example
from tuneforge.data.template import template_for
from tuneforge.data.vision_conversation import with_image_tokens
from tuneforge.errors import UserError
from tuneforge.model.loader import load_config, load_tokenizer
from tuneforge.model.vision_parts import is_vision_config
from tuneforge.model.vlm_processor import load_processor

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.data.conversation import Conversation


@dataclasses.dataclass
class PreviewBlock:
    """One previewed row: its text (header, the tokens with the trained ones marked, summary) and its image refs
    (file paths or data URLs, in order)."""

    text: str
    images: list[str]


def preview(cfg: RunConfig, count: int = 3, color: bool | None = None) -> str:
    return "\n\n".join(block.text for block in preview_blocks(cfg, count, color))


def preview_blocks(cfg: RunConfig, count: int = 3, color: bool | None = None) -> list[PreviewBlock]:
    if not cfg.data.dataset:
        raise UserError("dataset is required", fix="name one or more datasets from dataset_info.json")
    tokenizer = load_tokenizer(cfg.model)
    template = template_for(cfg.data, tokenizer)
    template.fix_tokenizer(tokenizer)
    vision = _Vision(cfg)
    blocks = []
    for attr in get_dataset_attrs(cfg.data.dataset, cfg.data.dataset_dir):
        for conv in load_conversations(attr, cfg.data.dataset_dir, cfg.data)[:count]:
            encoded = vision.expand(conv, template)
            d = cfg.data
            example = encode_sft_example(
                encoded, template, tokenizer, d.cutoff_len, d.train_on_prompt, d.mask_history, d.default_system
            )
            ids, labels = example["input_ids"], example["labels"]
            pictures = f" · {len(conv.images)} image(s)" if conv.images else ""
            header = f"── {attr.name} · {conv.source} · template {template.name}{pictures} ──"
            body = render_label_mask(ids, labels, tokenizer, color, thought_words=template.thought_words)
            if encoded is not conv:
                body = fold_image_tokens(body, template.mm_plugin.get("image_token", "<image>"))
            thinking = thinking_line(ids, labels, tokenizer, template, encoded)  # None: nothing about thinking
            blocks.append(PreviewBlock(header + "\n" + body + (f"\n{thinking}" if thinking else ""), list(conv.images)))
    return blocks


def fold_image_tokens(text: str, token: str) -> str:
    """Each run of two or more image tokens as `token×N`: a picture takes hundreds of them."""
    return re.sub(f"(?:{re.escape(token)}){{2,}}", lambda m: f"{token}×{len(m.group(0)) // len(token)}", text)


class _Vision:
    """Whether the model reads images (its config nests a vision_config) and its processor, loaded at the first row
    with images."""

    def __init__(self, cfg: RunConfig):
        self.cfg, self.processor, self.is_vlm = cfg, None, None

    def expand(self, conv: Conversation, template) -> Conversation:
        """The conversation as training encodes it: a VLM's image tokens in place; for a text model, as it is."""
        if not (conv.images or conv.videos):
            return conv
        if self.is_vlm is None:
            self.is_vlm = is_vision_config(load_config(self.cfg.model))
        if not self.is_vlm:
            return conv  # the text with its <image> / <video> placeholders
        if conv.videos:
            refuse_vision(dataclasses.replace(conv, images=[]), "preview")  # video frames are not expanded yet
        if self.processor is None:
            self.processor = load_processor(self.cfg.model.model_name_or_path)
        return with_image_tokens(conv, template, self.processor, self.cfg.multimodal)[0]
