"""A vision-language model's processor files, carried into the folders we write (a training run, an export) so that
`AutoProcessor` (or model.vlm_processor.load_processor) loads from them with the training template.

The files are copied as the base ships them (preprocessor_config.json, processor_config.json, the video processor's
config), not re-saved: transformers 5 would fold the image processor into processor_config.json, and without
torchvision the Qwen processors load image-only and would drop the video processor's settings. The chat template is
the one exception: the training template (tokenizer.chat_template, saved as chat_template.jinja) must win, so a
template kept in the base's processor_config.json or legacy chat_template.json is not carried over.

The training template renders text content; `processor.apply_chat_template` is usually called with OpenAI-style content
parts ({"type": "image"}, {"type": "text", ...}). `vision_chat_template` puts a prelude before the training template
that joins each message's parts into one text, an image part becoming the placeholder the family's processor expands
(Qwen: <|vision_start|><|image_pad|><|vision_end|>; GLM-4.1V: <|begin_of_image|><|image|><|end_of_image|>; LLaVA,
LLaVA-NeXT: <image>; Gemma 3: <start_of_image>), so the processor's ids are the ids training encoded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.model_args import ModelArguments

PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json")
IMAGE_PROCESSOR_FILES = PROCESSOR_FILES[:2]  # one of these holds the image processor


GEMMA3_BOI = "<start_of_image>"  # Gemma3Processor replaces it with the image's full token sequence
PRELUDE = (
    "{%- set ns = namespace(messages=[]) -%}"
    "{%- for m in messages -%}"
    "{%- if m['content'] is string or m['content'] is none -%}{%- set ns.messages = ns.messages + [m] -%}"
    "{%- else -%}{%- set text = namespace(s='') -%}"
    "{%- for part in m['content'] -%}"
    "{%- if part['type'] in ['image', 'image_url'] -%}{%- set text.s = text.s + __IMAGE__ -%}"
    "{%- elif part['type'] == 'text' -%}{%- set text.s = text.s + part['text'] -%}{%- endif -%}"
    "{%- endfor -%}"
    "{%- set ns.messages = ns.messages + [dict(m, content=text.s)] -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- set messages = ns.messages -%}"
)


def image_placeholder(plugin: dict | None) -> str | None:
    """The text for one image that the family's processor expands into its image tokens (None: not a vision
    template of a family that trains here)."""
    name = (plugin or {}).get("name")
    if name in ("qwen2_vl", "qwen3_vl"):
        return plugin["vision_bos_token"] + plugin["image_token"] + plugin["vision_eos_token"]
    if name in ("llava", "llava_next"):
        return plugin["image_token"]
    if name == "glm4v":  # the markers GLM-4.1V's own template writes around its image token
        return f"<|begin_of_image|>{plugin['image_token']}<|end_of_image|>"
    if name == "gemma3":
        return GEMMA3_BOI
    return None


def vision_chat_template(chat_template: str, plugin: dict | None) -> str:
    """The training template, reading content parts as well (see the module's doc); unchanged for other templates."""
    placeholder = image_placeholder(plugin)
    if placeholder is None:
        return chat_template
    return PRELUDE.replace("__IMAGE__", json.dumps(placeholder)) + chat_template


def processor_files(m: ModelArguments) -> dict[str, str]:
    """name -> local path of each processor file the base has (a hub id: from the cache, downloaded if needed)."""
    from transformers.utils import cached_file  # heavy: only a run that saves a VLM reads it

    found = {}
    for name in PROCESSOR_FILES:
        path = cached_file(
            m.model_name_or_path,
            name,
            cache_dir=m.cache_dir,
            revision=m.model_revision,
            token=m.hf_hub_token,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
        if path is not None:
            found[name] = path
    if not any(name in found for name in IMAGE_PROCESSOR_FILES):
        raise UserError(
            "this vision-language model has no image processor (preprocessor_config.json or processor_config.json): "
            "the export could not read pictures",
            where=f"model_name_or_path ({m.model_name_or_path})",
            fix="copy the processor files of the original model into that folder",
        )
    return found


def write_processor_files(files: dict[str, str], folder: Path) -> None:
    """Copy the processor files into the export folder, without a chat template of their own."""
    for name, source in files.items():
        if name == "processor_config.json":
            data = json.loads(Path(source).read_text(encoding="utf-8"))
            data.pop("chat_template", None)  # it would win over chat_template.jinja (the training template)
            (folder / name).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        else:
            shutil.copyfile(source, folder / name)
