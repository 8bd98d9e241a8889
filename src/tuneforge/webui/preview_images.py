"""The Train tab's data preview with each row's images as thumbnails beside its tokens. A thumbnail is the picture
scaled down (LLaMA-Factory's resize rule, to at most THUMB_SIDE² pixels) and inlined as a PNG data URL: the page
needs no file route into the data folder, and a large photo never reaches the browser whole."""

from __future__ import annotations

import base64
import html
from io import BytesIO

from tuneforge.data.media import load_image
from tuneforge.webui.render import preview_html

THUMB_SIDE = 128
THUMB_STYLE = f"max-width:{THUMB_SIDE}px;max-height:{THUMB_SIDE}px;border:1px solid #d1d5db;border-radius:4px"
ROW_STYLE = "display:flex;gap:12px;align-items:flex-start"
THUMBS_STYLE = "display:flex;flex-direction:column;gap:6px;margin-top:28px;flex:none"


def thumbnail_url(ref: str) -> str:
    """A file path or data URL → a PNG data URL of the picture scaled to at most THUMB_SIDE² pixels."""
    image = load_image(ref, THUMB_SIDE * THUMB_SIDE, 1)
    out = BytesIO()
    image.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def image_name(ref: str, index: int) -> str:
    """What a thumbnail's alt / title says: the file's path, or which image a data URL is."""
    return f"image {index + 1} (data URL)" if ref.startswith("data:") else ref


def thumbnails_html(refs: list[str]) -> str:
    imgs = "".join(
        f'<img class="tf-thumb" src="{thumbnail_url(ref)}" alt="{html.escape(image_name(ref, i))}" '
        f'title="{html.escape(image_name(ref, i))}" style="{THUMB_STYLE}">'
        for i, ref in enumerate(refs)
    )
    return f'<div class="tf-preview-images" style="{THUMBS_STYLE}">{imgs}</div>'


def preview_blocks_html(blocks) -> str:
    """train/preview.py's PreviewBlocks as HTML: without images, one coloured preview as before; else each row's
    thumbnails beside its tokens."""
    if not any(block.images for block in blocks):
        return preview_html("\n\n".join(block.text for block in blocks))
    rows = []
    for block in blocks:
        thumbs = thumbnails_html(block.images) if block.images else ""
        tokens = f'<div style="flex:1;min-width:0">{preview_html(block.text)}</div>'
        rows.append(f'<div class="tf-preview-row" style="{ROW_STYLE}">{thumbs}{tokens}</div>')
    return "".join(rows)
