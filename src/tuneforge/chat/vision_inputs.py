"""Images in a chat: OpenAI content parts → text with `<image>` placeholders + image references, and, for a
vision-language model, the prompt ids with the family's image tokens in place plus the image inputs its `generate`
takes (pixel_values, image_grid_thw, mm_token_type_ids, ...), as the model's own processor makes them.

The prompt is encoded as in training (data/vision_conversation.py expands the placeholders, the template encodes the
turns); the pictures go through the processor's image processor, as data/vision_collate.py batches them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from tuneforge.data.media import WEB_URL, check_placeholders, part_urls, parts_text, resolve
from tuneforge.data.vision_collate import image_inputs
from tuneforge.data.vision_conversation import with_image_tokens
from tuneforge.errors import UserError
from tuneforge.model.vlm_processor import load_processor

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.data.conversation import Conversation

FIX_WEB = "download the picture and give its file path, or send it as a base64 data URL (data:image/png;base64,...)"


def message_content(content: Any, where: str) -> tuple[str, list[str]]:
    """A message's `content` → (its text, its image references). A string is the text as it is; a list of OpenAI
    parts is its text parts joined, an `<image>` placeholder where each image_url part stands (its url: a file path
    or a base64 data URL; a web address is refused, nothing is downloaded)."""
    if content is None or isinstance(content, str):
        return content or "", []
    if not isinstance(content, list):
        raise UserError(f"content must be a string or a list of parts, got {type(content).__name__}", where=where)
    text = parts_text(content, where)
    if part_urls(content, "video", where):
        raise UserError("video parts are not supported in chat", where=where, fix="send images (image_url parts)")
    return text, [image_ref(url, where) for url in part_urls(content, "image", where)]


def image_ref(url: str, where: str) -> str:
    """A picture's file path or base64 data URL, checked (the file exists; a data URL is an image's); a web address
    is refused: nothing is downloaded."""
    if WEB_URL.match(url):
        raise UserError(f"image {url[:80]} is a web address: images are not downloaded", where=where, fix=FIX_WEB)
    if not url.startswith("data:") and not os.path.isfile(url):
        raise UserError(f"image file not found: {url}", where=where, fix="check the path")
    return resolve(url, "", where, "image")


def refuse_images(conv: Conversation) -> None:
    """One line when a text-only model is sent images."""
    if conv.images:
        raise UserError(
            f"the messages hold {len(conv.images)} image(s), and this model reads text only",
            where="messages",
            fix="send text only, or chat with a vision-language model (e.g. Qwen2-VL) and its template",
        )


class VisionPrompts:
    """A vision-language model's prompts: the ids with the image tokens expanded, plus the image inputs. The processor
    (image processor + the family's token rules) is read from the model folder (for base + LoRA: the base model's)
    when the first picture comes, so a folder without processor files still chats in text."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self._processor = None

    @property
    def processor(self):
        if self._processor is None:
            args = self.cfg.model
            try:
                self._processor = load_processor(
                    args.model_name_or_path,
                    cache_dir=args.cache_dir,
                    revision=args.model_revision,
                    token=args.hf_hub_token,
                    trust_remote_code=args.trust_remote_code,
                )
            except (OSError, ValueError, TypeError) as exc:
                raise UserError(
                    f"cannot load the vision model's processor: {str(exc).splitlines()[0][:200]}",
                    where=f"model_name_or_path ({args.model_name_or_path})",
                    fix="copy the processor files (preprocessor_config.json, ...) from the base model's folder",
                ) from exc
        return self._processor

    def encode(self, conv: Conversation, template, tokenizer) -> tuple[list[int], dict]:
        """(prompt ids, the image inputs generate takes besides input_ids / attention_mask)."""
        check_placeholders(conv)  # a typed "<image>" with no picture would leave the model image tokens to fill
        if not conv.images:
            return template.encode_prompt(tokenizer, conv, self.cfg.data.default_system), {}
        processor = self.processor
        conv, images = with_image_tokens(conv, template, processor, self.cfg.multimodal)
        ids = template.encode_prompt(tokenizer, conv, self.cfg.data.default_system)
        return ids, image_inputs(processor, [ids], images)


def to_model(inputs: dict, model) -> dict:
    """The inputs on the model's device; floating ones (pixel values) in its dtype, as its vision tower runs."""
    out = {}
    for key, value in inputs.items():
        value = value.to(model.device)
        out[key] = value.to(model.dtype) if value.is_floating_point() else value
    return out


def image_part(path: str, where: str = "--image") -> dict:
    """An OpenAI image_url part for a picture file (or a data URL); a missing file is one line."""
    return {"type": "image_url", "image_url": {"url": image_ref(path, where)}}
