"""`tuneforge preview` (and the Web UI's data preview) on rows with images: a vision-language model shows the image
tokens training puts in place of each `<image>` (a run folded to `<|image_pad|>×N`), a text model shows the row's
text with its placeholders; the images come along for the Web UI's thumbnails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.train.preview import fold_image_tokens, preview, preview_blocks

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
LF_DEMO = ROOT / "tests" / "fixtures" / "lf_mllm_demo"  # LF 0.9.5's mllm_demo: two 1.jpg in its first row


def config(model_dir, dataset: str, dataset_dir: Path, template: str):
    return load_config(
        None,
        {
            "model_name_or_path": str(model_dir),
            "dataset": dataset,
            "dataset_dir": str(dataset_dir),
            "template": template,
        },
    )


def test_a_vlm_previews_the_image_tokens_training_encodes(tiny_vlm_dir):
    [block] = preview_blocks(config(tiny_vlm_dir("qwen2_vl"), "shapes_demo", DATA, "qwen2_vl"), count=1, color=False)
    assert block.images == [str(DATA / "shapes_demo" / "train_051.png")]
    assert block.text == (
        f"── shapes_demo · {DATA / 'shapes_demo.json'}:2 · template qwen2_vl · 1 image(s) ──\n"
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|>×4<|vision_end|>What shape is this?<|im_end|>\n"
        "<|im_start|>assistant\n⟦triangle<|im_end|>\n⟧\n"
        "tokens: 42, trained: 6"  # 4 image tokens (a 64 x 64 picture), never trained
    )


def test_larger_pictures_fold_to_their_token_count(tiny_vlm_dir):
    from PIL import Image

    from tuneforge.model.vlm_processor import load_processor

    model = tiny_vlm_dir("qwen2_vl")
    [block] = preview_blocks(config(model, "mllm_demo", LF_DEMO, "qwen2_vl"), count=1, color=False)
    picture = LF_DEMO / "mllm_demo_data" / "1.jpg"
    assert block.images == [str(picture)] * 2
    # a 300 x 168 picture (under image_max_pixels: not resized), one token per 2 x 2 patches of the processor's grid
    assert Image.open(picture).size == (300, 168)
    grid = load_processor(model).image_processor(images=[Image.open(picture).convert("RGB")])["image_grid_thw"]
    n = int(grid[0].prod()) // 4
    assert n == 50
    image = f"<|vision_start|><|image_pad|>×{n}<|vision_end|>"
    assert f"<|im_start|>user\n{image}Who are they?<|im_end|>" in block.text
    assert f"<|im_start|>user\nWhat are they doing?{image}<|im_end|>" in block.text
    assert block.text.splitlines()[0].endswith("· template qwen2_vl · 2 image(s) ──")


def test_a_text_model_previews_the_text_with_its_placeholders(tiny_model_dir):
    cfg = config(tiny_model_dir, "mllm_demo", LF_DEMO, "qwen")
    [block] = preview_blocks(cfg, count=1, color=False)
    assert block.images == [str(LF_DEMO / "mllm_demo_data" / "1.jpg")] * 2
    assert block.text == (
        f"── mllm_demo · {LF_DEMO / 'mllm_demo.json'}:2 · template qwen · 2 image(s) ──\n"
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<image>Who are they?<|im_end|>\n"
        "<|im_start|>assistant\n⟦They're Kane and Gretzka from Bayern Munich.<|im_end|>\n⟧"
        "<|im_start|>user\nWhat are they doing?<image><|im_end|>\n"
        "<|im_start|>assistant\n⟦They are celebrating on the soccer field.<|im_end|>\n⟧\n"
        "tokens: 117, trained: 48"
    )
    assert preview(cfg, count=1, color=False) == block.text  # the CLI prints the same text


def test_a_vlm_with_a_text_template_is_one_line(tiny_vlm_dir):
    with pytest.raises(UserError, match="template 'qwen' is a text template, and this row has images"):
        preview(config(tiny_vlm_dir("qwen2_vl"), "shapes_demo", DATA, "qwen"), count=1, color=False)


def test_fold_image_tokens():
    pad = "<|image_pad|>"
    assert fold_image_tokens(f"a{pad * 3}b{pad}c{pad * 2}", pad) == f"a{pad}×3b{pad}c{pad}×2"
    assert fold_image_tokens("\x1b[2m<image><image>\x1b[0m", "<image>") == "\x1b[2m<image>×2\x1b[0m"
