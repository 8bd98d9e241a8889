"""Loading images (data/media.py): from a path or a data URL, resized to exactly the sizes LLaMA-Factory 0.9.5's own
`_preprocess_image` gives (tests/fixtures/lf_image_sizes.json, written by scripts/gen_lf_image_sizes.py from LF's
code), with image_max_pixels / image_min_pixels; broken files are one line; video frame lists."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from tuneforge.config import load_config
from tuneforge.data.conversation import Conversation
from tuneforge.data.media import QWEN_VL_PLUGINS, load_image, load_images, load_video_frames, preprocess_image
from tuneforge.errors import UserError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LF_SIZES = json.loads((FIXTURES / "lf_image_sizes.json").read_text())
DEMO_JPG = FIXTURES / "lf_mllm_demo" / "mllm_demo_data" / "1.jpg"  # 300 x 168


def test_the_qwen_vl_family_is_lfs():
    assert list(QWEN_VL_PLUGINS) == LF_SIZES["qwen_vl_plugins"]


def test_resize_gives_lfs_sizes_for_every_case():
    """640 cases: 16 sizes (1x1 to 3000x2000, aspect ratios up to 250) x 4 modes x 5 pixel limits x 2 plugins."""
    assert len(LF_SIZES["cases"]) == 640
    blank: dict = {}
    for plugin, max_pixels, min_pixels, width, height, mode, out_w, out_h, out_mode in LF_SIZES["cases"]:
        image = blank.setdefault((mode, width, height), Image.new(mode, (width, height)))
        out = preprocess_image(image, max_pixels, min_pixels, None if plugin == "base" else plugin)
        assert (out.width, out.height, out.mode) == (out_w, out_h, out_mode), (
            plugin,
            max_pixels,
            min_pixels,
            width,
            height,
        )


def test_load_image_from_a_path_and_from_a_data_url_give_the_same_pixels(tmp_path):
    png = tmp_path / "p.png"
    Image.new("P", (400, 300), 3).save(png)
    url = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
    from_path, from_url = load_image(str(png), 200 * 150, 32 * 32), load_image(url, 200 * 150, 32 * 32)
    assert from_path.size == from_url.size == (200, 150) and from_path.mode == "RGB"
    assert from_path.tobytes() == from_url.tobytes()


def test_load_image_keeps_lfs_resampling(tmp_path):
    """The same PIL calls as LF (default resampling of Image.resize), so the pixels match, not only the size."""
    image = Image.open(DEMO_JPG)
    expected = image.resize((int(300 * (0.25**0.5)), int(168 * (0.25**0.5))))  # LF's factor for max = a quarter
    out = load_image(str(DEMO_JPG), 300 * 168 // 4, 32 * 32)
    assert out.size == expected.size == (150, 84) and out.tobytes() == expected.tobytes()


def test_a_broken_image_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(UserError) as caught:
        load_image(str(bad), where="d.json:4")
    err = caught.value
    assert err.where == "d.json:4" and err.message.startswith(f"cannot read image {bad}: ")
    assert "\n" not in str(err)
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(DEMO_JPG.read_bytes()[:2000])
    with pytest.raises(UserError, match=f"cannot read image {truncated}: "):
        load_image(str(truncated))
    with pytest.raises(UserError, match=r"cannot read image a base64 data URL \(\d+ characters\): "):
        load_image("data:image/png;base64,aGVsbG8=")


def test_load_images_applies_image_max_and_min_pixels_from_the_config(tmp_path):
    small = io.BytesIO()
    Image.new("RGB", (10, 10)).save(small, "PNG")
    url = "data:image/png;base64," + base64.b64encode(small.getvalue()).decode()
    conv = Conversation([], images=[str(DEMO_JPG), url], source="d.json:2")
    cfg = load_config(None, {"model_name_or_path": "m", "image_max_pixels": 100 * 56, "image_min_pixels": 400})
    big, tiny = load_images(conv, cfg.multimodal)
    assert big.size == (int(300 * (5600 / 50400) ** 0.5), int(168 * (5600 / 50400) ** 0.5)) == (100, 56)
    assert tiny.size == (20, 20)  # 10x10 scaled up to 400 pixels
    defaults = load_images(conv, load_config(None, {"model_name_or_path": "m"}).multimodal)
    assert [im.size for im in defaults] == [(300, 168), (32, 32)]  # LF's defaults: 768*768 / 32*32


def test_image_pixel_limits_are_range_checked():
    with pytest.raises(UserError, match="image_max_pixels must be at least 1"):
        load_config(None, {"model_name_or_path": "m", "image_max_pixels": 0})


def test_video_frames_load_as_images_and_video_files_are_one_line(tmp_path):
    frames = [str(DEMO_JPG)] * 3
    out = load_video_frames(frames, 256 * 256, 16 * 16)
    assert [im.size for im in out] == [(300, 168)] * 3
    assert len(load_video_frames(frames, 256 * 256, 16 * 16, plugin="qwen2_vl")) == 4  # even count, LF's Qwen rule
    with pytest.raises(UserError, match="cannot decode video clip.mp4: decoding video files is not available yet"):
        load_video_frames("clip.mp4", 256 * 256, 16 * 16, where="d.json:2")


def test_a_datasets_image_feature_becomes_a_data_url_that_loads(tmp_path):
    """Parquet / arrow rows hold images as {"bytes", "path"} (datasets' Image feature), as LF reads them."""
    from tuneforge.data.media import resolve

    ref = resolve({"bytes": DEMO_JPG.read_bytes(), "path": None}, str(tmp_path), "d.parquet:row 1")
    assert ref.startswith("data:image/unknown;base64,")
    assert load_image(ref).tobytes() == load_image(str(DEMO_JPG)).tobytes()
    assert resolve({"bytes": None, "path": str(DEMO_JPG)}, str(tmp_path), "d.parquet:row 1") == str(DEMO_JPG)
