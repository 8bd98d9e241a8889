"""How many tokens each image takes, and the text that stands for it, per vision family: LLaMA-Factory 0.9.5's
mm_plugin rules (`data/mm_plugin.py`: Qwen2VLPlugin, Qwen3VLPlugin, LlavaPlugin, LlavaNextPlugin, Gemma3Plugin,
GLM4VPlugin), which write what the model's own processor writes. The data keeps LF's `<image>` placeholder; a template's
`mm_plugin` entry (templates.yaml) names the family and its tokens, and `expand_images` replaces each placeholder, in
order, with the family's tokens for that image. The counts come from the image processor's output for the (already
resized) images.
"""

from __future__ import annotations

from collections.abc import Iterator

from tuneforge.errors import UserError

IMAGE_PLACEHOLDER = "<image>"
FAMILIES = ("qwen2_vl", "qwen3_vl", "glm4v", "llava", "llava_next", "gemma3")  # plugin names with an image rule here


def image_token_counts(plugin: dict, processor, images: list) -> list[int]:
    """Tokens per image, for `images` (PIL images, as data/media.py loads them) under this plugin's processor."""
    name = plugin["name"]
    if not images:
        return []
    if name in ("qwen2_vl", "qwen3_vl", "glm4v"):  # a grid of patches, merge_size x merge_size patches per token
        grid = processor.image_processor(images=images, return_tensors="np")["image_grid_thw"]
        merge = processor.image_processor.merge_size**2
        return [int(thw.prod()) // merge for thw in grid]
    if name == "llava":  # a fixed-size picture: one token per patch, plus the CLS token unless "default" drops it
        pixels = processor.image_processor(images=images[:1], return_tensors="np")["pixel_values"][0]
        height, width = pixels.shape[-2:]
        count = (height // processor.patch_size) * (width // processor.patch_size)
        count += processor.num_additional_image_tokens
        count -= processor.vision_feature_select_strategy == "default"
        return [count] * len(images)
    if name == "llava_next":  # anyres: the base crop's patches + the picture's crops unpadded, a newline per row
        out = processor.image_processor(images=images, return_tensors="np")
        height, width = out["pixel_values"].shape[-2:]
        default = processor.vision_feature_select_strategy == "default"  # drops the CLS token
        return [
            processor._get_number_of_features(int(h), int(w), height, width) - default for h, w in out["image_sizes"]
        ]
    if name == "gemma3":  # a fixed number of soft tokens per image (pan-and-scan is refused for now)
        return [processor.image_seq_length] * len(images)
    raise UserError(
        f"images with template family '{name}' are not supported yet",
        where="template",
        fix=f"use a template of the families {', '.join(FAMILIES)} (e.g. qwen2_vl, qwen3_vl, llava, gemma3)",
    )


def image_text(plugin: dict, processor, count: int) -> str:
    """What stands for one image of `count` tokens in the text the tokenizer reads."""
    name, token = plugin["name"], plugin.get("image_token", IMAGE_PLACEHOLDER)
    if name in ("qwen2_vl", "qwen3_vl"):
        return f"{plugin['vision_bos_token']}{token * count}{plugin['vision_eos_token']}"
    if name == "glm4v":  # LF's GLM4VPlugin writes these markers itself (the entry's vision_bos_token is Qwen's)
        return f"<|begin_of_image|>{token * count}<|end_of_image|>"
    if name == "gemma3":  # "\n\n<start_of_image>" + soft tokens + "<end_of_image>\n\n": the processor's own sequence
        return processor.full_image_sequence
    return token * count


def expand_images(contents: list[str], plugin: dict, processor, counts: list[int]) -> list[str]:
    """Each message's text with its `<image>` placeholders replaced, in order across the messages."""
    left: Iterator[int] = iter(counts)
    out = []
    for content in contents:
        parts = content.split(IMAGE_PLACEHOLDER)
        text = parts[0]
        for part in parts[1:]:
            count = next(left, None)
            if count is None:
                raise ValueError("more <image> placeholders than images")  # data/media.py checked the counts
            text += image_text(plugin, processor, count) + part
        out.append(text)
    if next(left, None) is not None:
        raise ValueError("more images than <image> placeholders")
    return out
