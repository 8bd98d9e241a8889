"""Each family's image tokens, as LLaMA-Factory's mm_plugin writes them, equal what the model's own processor writes
for the same picture: the ids of our expanded text are the processor's input_ids, token for token."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tuneforge.data.image_tokens import expand_images, image_token_counts
from tuneforge.data.template import get_template
from tuneforge.errors import UserError
from tuneforge.model.vlm_processor import load_processor

ROOT = Path(__file__).resolve().parents[2]
# tiny VLM arch -> (our template, the placeholder its processor expects in the text)
CASES = {
    "qwen2_vl": ("qwen2_vl", "<|vision_start|><|image_pad|><|vision_end|>"),
    "qwen2_5_vl": ("qwen2_vl", "<|vision_start|><|image_pad|><|vision_end|>"),
    "qwen3_vl": ("qwen3_vl", "<|vision_start|><|image_pad|><|vision_end|>"),
    "llava": ("llava", "<image>"),
    "llava_next": ("llava_next", "<image>"),
    "glm4v": ("glm4v", "<|begin_of_image|><|image|><|end_of_image|>"),
    "gemma3": ("gemma3", "<start_of_image>"),
}


def pictures() -> list:
    folder = ROOT / "data" / "shapes_demo"
    small = Image.open(sorted(folder.glob("*.png"))[0]).convert("RGB")
    return [small, small.resize((96, 160))]  # two sizes: Qwen's grid and LLaVA-NeXT's crops differ per image


@pytest.mark.parametrize("arch", list(CASES))
def test_expanded_text_is_what_the_processor_writes(tiny_vlm_dir, arch):
    template_name, native = CASES[arch]
    processor = load_processor(tiny_vlm_dir(arch))
    plugin = get_template(template_name, processor.tokenizer).mm_plugin
    images = pictures()
    counts = image_token_counts(plugin, processor, images)
    contents = ["<image>What colour is it?", "And this one: <image>"]
    ours = expand_images(contents, plugin, processor, counts)
    theirs_text = [c.replace("<image>", native) for c in contents]
    theirs = processor(text=["".join(theirs_text)], images=images, return_tensors="np")["input_ids"][0].tolist()
    assert processor.tokenizer("".join(ours), add_special_tokens=False)["input_ids"] == theirs
    if arch.startswith("qwen") or arch in ("llava_next", "glm4v"):
        assert counts[0] != counts[1]  # the count follows the picture's size (LLaVA-NeXT: its anyres crops)


def test_counts_must_match_the_placeholders():
    plugin = {"name": "llava", "image_token": "<image>"}
    assert expand_images(["a<image>b"], plugin, None, [2]) == ["a<image><image>b"]
    with pytest.raises(ValueError, match="more images"):
        expand_images(["no picture"], plugin, None, [3])
    with pytest.raises(ValueError, match="more <image> placeholders"):
        expand_images(["<image><image>"], plugin, None, [3])


def test_family_without_a_rule_is_one_line():
    with pytest.raises(UserError, match="images with template family 'pixtral' are not supported yet"):
        image_token_counts({"name": "pixtral"}, None, ["picture"])
