"""The Train tab's data preview shows a row's images as thumbnails beside its tokens: each picture scaled to at most
128² pixels and inlined as a PNG data URL (file paths and base64 refs alike); rows without images render as before."""

from __future__ import annotations

import base64
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from tuneforge.errors import UserError
from tuneforge.train.preview import PreviewBlock
from tuneforge.webui.preview_images import preview_blocks_html, thumbnail_url, thumbnails_html
from tuneforge.webui.render import preview_html

SHAPE = Path(__file__).resolve().parents[2] / "data" / "shapes_demo" / "train_051.png"  # 64 x 64
THUMB = "max-width:128px;max-height:128px;border:1px solid #d1d5db;border-radius:4px"
COLUMN = "display:flex;flex-direction:column;gap:6px;margin-top:28px;flex:none"
ROW = "display:flex;gap:12px;align-items:flex-start"


def picture_of(url: str) -> Image.Image:
    head, data = url.split(",", 1)
    assert head == "data:image/png;base64"
    image = Image.open(BytesIO(base64.b64decode(data)))
    assert image.format == "PNG"
    return image


def test_a_small_picture_is_inlined_as_it_is():
    thumb, original = picture_of(thumbnail_url(str(SHAPE))), Image.open(SHAPE).convert("RGB")
    assert thumb.size == (64, 64)
    assert list(thumb.convert("RGB").getdata()) == list(original.getdata())


def test_a_large_picture_is_scaled_down_and_a_data_url_reads_as_its_file(tmp_path):
    big = tmp_path / "big.png"
    Image.new("RGB", (400, 200), (200, 30, 30)).save(big)
    # LF's rule: both sides times sqrt(128² / (400 * 200)), truncated
    assert picture_of(thumbnail_url(str(big))).size == (181, 90)
    as_data = "data:image/png;base64," + base64.b64encode(big.read_bytes()).decode()
    assert thumbnail_url(as_data) == thumbnail_url(str(big))


def test_an_unreadable_picture_is_one_line(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not a picture")
    with pytest.raises(UserError, match=f"cannot read image {bad}"):
        thumbnail_url(str(bad))


def test_thumbnails_html_names_each_picture():
    url = thumbnail_url(str(SHAPE))
    as_data = "data:image/png;base64," + base64.b64encode(SHAPE.read_bytes()).decode()
    assert thumbnails_html([str(SHAPE), as_data]) == (
        f'<div class="tf-preview-images" style="{COLUMN}">'
        f'<img class="tf-thumb" src="{url}" alt="{SHAPE}" title="{SHAPE}" style="{THUMB}">'
        f'<img class="tf-thumb" src="{url}" alt="image 2 (data URL)" title="image 2 (data URL)" style="{THUMB}">'
        "</div>"
    )


def test_rows_with_images_get_their_thumbnails_beside_the_tokens():
    with_image = PreviewBlock("── shapes · x:2 ──\n<image>What shape?⟦triangle⟧\ntokens: 9, trained: 2", [str(SHAPE)])
    text_only = PreviewBlock("── toy · y:2 ──\nhi⟦there⟧\ntokens: 3, trained: 1", [])
    assert preview_blocks_html([with_image, text_only]) == (
        f'<div class="tf-preview-row" style="{ROW}">{thumbnails_html([str(SHAPE)])}'
        f'<div style="flex:1;min-width:0">{preview_html(with_image.text)}</div></div>'
        f'<div class="tf-preview-row" style="{ROW}">'
        f'<div style="flex:1;min-width:0">{preview_html(text_only.text)}</div></div>'
    )
    assert "&lt;image&gt;What shape?" in preview_html(with_image.text)
    # no images anywhere: the one preview block as before
    assert preview_blocks_html([text_only, text_only]) == preview_html(text_only.text + "\n\n" + text_only.text)
