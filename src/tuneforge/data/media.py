"""Images and videos in the data, as LLaMA-Factory 0.9.5 reads them.

Reading a row (formats.py calls `read_media`) resolves its media to file paths or `data:` URLs and checks that the
turns hold one `<image>` / `<video>` placeholder per item; nothing is opened then. Pixels are loaded when a batch is
encoded (`load_image`), resized exactly as LF's `_preprocess_image` does, so a dataset is never held decoded.

Sources: LF's `images` / `videos` columns (a string or a list per row; a video may be a list of frame images; a
`datasets` Image feature {"bytes", "path"} is read too), and OpenAI-format content parts
`{"type": "image_url", "image_url": {"url": ...}}` / `video_url` (a placeholder where the part stands).
"""

from __future__ import annotations

import base64
import math
import os
import re
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneforge.errors import UserError

if TYPE_CHECKING:
    from PIL.Image import Image

    from tuneforge.config.multimodal_args import MultimodalArguments
    from tuneforge.data.conversation import Conversation
    from tuneforge.data.registry import DatasetAttr

IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER = "<image>", "<video>"  # LF's IMAGE_PLACEHOLDER / VIDEO_PLACEHOLDER
PLACEHOLDERS = {"image": IMAGE_PLACEHOLDER, "video": VIDEO_PLACEHOLDER}
PART_KINDS = {"image_url": "image", "video_url": "video"}  # OpenAI content part type -> media kind
# LF's plugins that subclass Qwen2VLPlugin and so add its own resize rules (scripts/gen_lf_image_sizes.py checks)
QWEN_VL_PLUGINS = ("glm4v", "qwen2_omni", "qwen2_vl", "qwen3_vl")
DATA_URL = re.compile(r"^data:(image|video)/[\w.+-]+;base64,", re.IGNORECASE)
WEB_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
FIX_PATH = "check the path, or set media_dir to the folder the dataset's media paths are relative to"
FIX_COUNT = "write one {token} in the turns' text where each {kind} goes, as LLaMA-Factory requires"


def media_root(data_args, dataset_dir: str | Path) -> str:
    """The folder relative media paths are read from: media_dir, else dataset_dir (LF's default)."""
    media_dir = data_args.media_dir if data_args is not None else None
    return str(media_dir or dataset_dir)


# ---- reading rows -----------------------------------------------------------------------------------------------


def parts_text(parts: list, source: str) -> str:
    """OpenAI content parts → one text: text parts as they are, a placeholder where an image / video part stands."""
    out = []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            out.append(str(part.get("text", "")))
        elif kind in PART_KINDS:
            _part_url(part, kind, source)
            out.append(PLACEHOLDERS[PART_KINDS[kind]])
        else:
            raise UserError(
                f"unknown content part type {kind!r}: text, image_url and video_url parts are read",
                where=source,
                fix='write parts as {"type": "text", "text": ...} or {"type": "image_url", "image_url": {"url": ...}}',
            )
    return "".join(out)


def part_urls(parts: list, media: str, source: str) -> list[str]:
    """The URLs of the content parts of one media kind ("image" / "video"), in order (call `parts_text` first: it
    checks the parts' structure)."""
    return [_part_url(p, p["type"], source) for p in parts if PART_KINDS.get(p.get("type")) == media]


def _part_url(part: dict, kind: str, source: str) -> str:
    value = part.get(kind)
    url = value.get("url") if isinstance(value, dict) else value  # some clients write the URL itself
    if not isinstance(url, str) or not url.strip():
        raise UserError(f'a {kind} part needs {{"{kind}": {{"url": ...}}}}', where=source, fix="give a path or URL")
    return url


def _part_refs(row: dict, attr: DatasetAttr) -> dict[str, list[str]]:
    """The image / video URLs of the row's content parts, in turn order (the chosen reply last); structure was
    checked by `parts_text` when the turns were read."""
    raw = row.get(attr.messages)
    messages = list(raw) if isinstance(raw, list) else []
    if attr.ranking:
        messages.append(row.get(attr.chosen or "chosen"))
    refs: dict[str, list[str]] = {"image": [], "video": []}
    for message in messages:
        content = message.get(attr.content_tag) if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            kind = part.get("type")
            if kind in PART_KINDS:
                refs[PART_KINDS[kind]].append(_part_url(part, kind, ""))
    return refs


def _column(row: dict, column: str | None, source: str) -> list:
    """A media column's value as a list: a string is one item, null / missing / [] is none."""
    value = row.get(column) if column else None
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        return [value]
    if not isinstance(value, list):
        raise UserError(
            f"column '{column}' must hold a path or a list of paths, got {type(value).__name__}", where=source
        )
    return value


def resolve(ref: Any, root: str, source: str, kind: str = "image") -> str:
    """One media item → a file path (relative ones joined to `root`, as LF's _find_medias) or a data URL. Checks the
    file exists; never opens it. A web address is refused: nothing is downloaded while training."""
    if isinstance(ref, dict):  # a `datasets` Image feature (parquet / arrow): {"bytes": ..., "path": ...}
        if ref.get("bytes"):
            return f"data:{kind}/unknown;base64," + base64.b64encode(ref["bytes"]).decode("ascii")
        ref = ref.get("path")
    if not isinstance(ref, str) or not ref.strip():
        raise UserError(f"each {kind} must be a file path or a data URL, got {ref!r}", where=source, fix=FIX_PATH)
    if ref.startswith("data:"):
        match = DATA_URL.match(ref)
        if not match or match.group(1).lower() != kind:
            raise UserError(
                f"a {kind} data URL must start data:{kind}/<type>;base64, (got {ref[:30]}...)", where=source
            )
        return ref
    if WEB_URL.match(ref):
        raise UserError(
            f"{kind} {ref} is a web address: media are not downloaded while reading data",
            where=source,
            fix="download the file and give its path (or a base64 data URL)",
        )
    joined = os.path.join(root, ref)
    if os.path.isfile(joined):
        return joined
    if os.path.isfile(ref):  # LF: a path not found in media_dir is used as given
        return ref
    raise UserError(f"{kind} file not found: {ref} (looked in {root or '.'} and as given)", where=source, fix=FIX_PATH)


def _resolve_video(ref: Any, root: str, source: str) -> str | list[str]:
    if isinstance(ref, list):  # pre-sampled frames (LF: a list of image paths per video)
        if not ref:
            raise UserError("a video given as frames needs at least one frame", where=source)
        return [resolve(frame, root, source, "image") for frame in ref]
    return resolve(ref, root, source, "video")


def read_media(conv: Conversation, row: dict, attr: DatasetAttr, root: str) -> None:
    """Fill `conv.images` / `conv.videos` from the row's media columns or its content parts, then check that the
    placeholders match (LF's _validate_messages)."""
    source = conv.source
    images = [resolve(ref, root, source, "image") for ref in _column(row, attr.images, source)]
    videos = [_resolve_video(ref, root, source) for ref in _column(row, attr.videos, source)]
    if attr.formatting == "openai":
        parts = _part_refs(row, attr)
        if parts["image"] or parts["video"]:
            if images or videos:
                raise UserError(
                    "the row gives media both as content parts and in a media column",
                    where=source,
                    fix="give them one way: image_url parts, or the images / videos column with <image> placeholders",
                )
            images = [resolve(ref, root, source, "image") for ref in parts["image"]]
            videos = [resolve(ref, root, source, "video") for ref in parts["video"]]
    conv.images, conv.videos = images, videos
    if attr.images or attr.videos or images or videos:
        check_placeholders(conv)


def check_placeholders(conv: Conversation) -> None:
    """As many `<image>` placeholders in the turns as images, and `<video>` as videos; with a rejected reply, the
    prompt plus each reply must match (LF validates chosen and rejected alike). System text is not counted."""
    sequences = [("", conv.messages)]
    if conv.rejected is not None:
        sequences.append((" (prompt + rejected reply)", conv.messages[:-1] + [conv.rejected]))
    for kind, items in (("image", conv.images), ("video", conv.videos)):
        token = PLACEHOLDERS[kind]
        for which, messages in sequences:
            found = sum(m.content.count(token) for m in messages)
            if found != len(items):
                raise UserError(
                    f"the row has {len(items)} {kind}(s) but {found} {token} placeholder(s) in its turns{which}",
                    where=conv.source,
                    fix=FIX_COUNT.format(token=token, kind=kind),
                )


def refuse_vision(
    conv: Conversation,
    doing: str = "training",
    reason: str | None = None,
    fix: str = "use a dataset without images or videos for now",
) -> None:
    """One line naming the row when it has images or videos: `reason`, or vision `doing` is not wired yet."""
    if conv.images or conv.videos:
        what = " and ".join(
            f"{len(items)} {kind}(s)" for kind, items in (("image", conv.images), ("video", conv.videos)) if items
        )
        raise UserError(
            f"the row has {what}: {reason or f'vision {doing} is not available yet in this version'}",
            where=conv.source or None,
            fix=fix,
        )


# ---- loading pixels ---------------------------------------------------------------------------------------------


def _describe(ref: str) -> str:
    return f"a base64 data URL ({len(ref)} characters)" if ref.startswith("data:") else ref


def load_image(
    ref: str,
    image_max_pixels: int = 768 * 768,
    image_min_pixels: int = 32 * 32,
    plugin: str | None = None,
    where: str | None = None,
) -> Image:
    """An RGB PIL image from a path or a data URL, resized as LF's `_preprocess_image` (Qwen2VLPlugin's for the
    Qwen-VL family plugins). A file that is not a readable image is one line naming it."""
    from PIL import Image as PILImage  # only the process that encodes a batch of images needs Pillow

    try:
        if ref.startswith("data:"):
            image = PILImage.open(BytesIO(base64.b64decode(ref.split(",", 1)[1])))
        else:
            image = PILImage.open(ref)
        image.load()
    except (OSError, ValueError, PILImage.DecompressionBombError) as exc:
        raise UserError(
            f"cannot read image {_describe(ref)}: {exc}",
            where=where,
            fix="replace it with a valid image file or remove the row",
        ) from exc
    return preprocess_image(image, image_max_pixels, image_min_pixels, plugin)


def preprocess_image(image: Image, image_max_pixels: int, image_min_pixels: int, plugin: str | None = None) -> Image:
    """LF 0.9.5's MMPluginMixin._preprocess_image, step for step (PIL's default resampling, int() truncation), then
    Qwen2VLPlugin's rules (sides of at least 28, aspect ratio at most 200) for its family."""
    if (image.width * image.height) > image_max_pixels:
        resize_factor = math.sqrt(image_max_pixels / (image.width * image.height))
        image = image.resize((int(image.width * resize_factor), int(image.height * resize_factor)))
    if (image.width * image.height) < image_min_pixels:
        resize_factor = math.sqrt(image_min_pixels / (image.width * image.height))
        image = image.resize((int(image.width * resize_factor), int(image.height * resize_factor)))
    if image.mode != "RGB":
        image = image.convert("RGB")
    if plugin in QWEN_VL_PLUGINS:
        if min(image.width, image.height) < 28:
            image = image.resize((max(image.width, 28), max(image.height, 28)))
        if image.width / image.height > 200:
            image = image.resize((image.height * 180, image.height))
        if image.height / image.width > 200:
            image = image.resize((image.width, image.width * 180))
    return image


def load_images(conv: Conversation, mm: MultimodalArguments, plugin: str | None = None) -> list[Image]:
    """The row's images, loaded and resized with image_max_pixels / image_min_pixels: what a batch encoder calls."""
    return [load_image(ref, mm.image_max_pixels, mm.image_min_pixels, plugin, conv.source) for ref in conv.images]


def load_video_frames(
    ref: str | list[str], max_pixels: int, min_pixels: int, plugin: str | None = None, where: str | None = None
) -> list[Image]:
    """A video given as frame images → its frames, each resized like an image (LF takes such frames as already
    sampled; the Qwen-VL family repeats the last one to an even count). Decoding a video file needs a decoder (LF:
    PyAV), which this version does not use: that is one line."""
    if not isinstance(ref, list):
        raise UserError(
            f"cannot decode video {_describe(ref)}: decoding video files is not available yet in this version",
            where=where,
            fix="give the video as a list of frame images in the videos column",
        )
    frames = list(ref)
    if plugin in QWEN_VL_PLUGINS and len(frames) % 2:
        frames.append(frames[-1])
    return [load_image(frame, max_pixels, min_pixels, plugin, where) for frame in frames]
