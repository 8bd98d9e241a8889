"""Exporting a vision-language model: what cannot be exported, and a check that the export's processor loads with the
training template (model/vlm_files.py writes the processor files)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.model.loader import load_config
from tuneforge.model.vision_parts import is_vision_config
from tuneforge.model.vlm_files import processor_files
from tuneforge.model.vlm_processor import load_processor

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig


def is_vision_export(cfg: RunConfig) -> bool:
    return is_vision_config(load_config(cfg.model))


def check_vision_export(cfg: RunConfig) -> None:
    """The export options a vision-language model cannot take: one line each, before anything loads."""
    m = cfg.model
    if m.export_quantization_bit is not None:
        raise UserError(
            "GPTQ export quantization cannot quantize a vision-language model: it calibrates a text-only "
            "causal LM (AutoModelForCausalLM) on text, which would drop the vision tower",
            where=cfg.where("export_quantization_bit"),
            fix="remove export_quantization_bit and quantize the exported folder with a VLM-aware tool",
        )
    if m.export_format == "gguf":
        raise UserError(
            "a vision-language model cannot be exported as GGUF (nor to Ollama) here: llama.cpp needs the vision "
            "tower in a separate mmproj file, which this exporter does not write",
            where=cfg.where("export_format"),
            fix="use export_format: safetensors, then convert with llama.cpp's convert_hf_to_gguf.py (and --mmproj)",
        )
    processor_files(cfg.model)


def check_processor(folder: Path, chat_template: str) -> None:
    """The export's processor loads and renders with the training template (else the folder is not written)."""
    processor = load_processor(folder)
    if processor.chat_template != chat_template or processor.tokenizer.chat_template != chat_template:
        raise RuntimeError(f"the exported processor in {folder} does not carry the training chat template")
