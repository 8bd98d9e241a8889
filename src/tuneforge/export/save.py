"""Write a merged model as a Hugging Face folder: safetensors shards, tokenizer with the training chat_template, a
generation_config whose eos_token_id lists the template's stop tokens, and a vision-language model's processor."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.export.vision import check_processor
from tuneforge.model.vlm_files import write_processor_files

if TYPE_CHECKING:
    from tuneforge.export.merge import Exportable


def shard_bytes(export_size_gb: float) -> int:
    return max(1, int(export_size_gb * 1e9))


def apply_generation_config(item: Exportable) -> None:
    gen = item.model.generation_config
    gen.eos_token_id = item.template.stop_token_ids(item.tokenizer)
    gen.pad_token_id = item.tokenizer.pad_token_id
    if item.tokenizer.bos_token_id is not None:
        gen.bos_token_id = item.tokenizer.bos_token_id
    item.model.config.eos_token_id = item.tokenizer.eos_token_id
    item.model.config.pad_token_id = item.tokenizer.pad_token_id


def save_hf(item: Exportable, folder: Path, export_size_gb: float) -> None:
    apply_generation_config(item)
    item.model.save_pretrained(folder, max_shard_size=shard_bytes(export_size_gb))
    item.tokenizer.save_pretrained(folder)
    if item.processor_files:  # a VLM: its processor beside the tokenizer, loading with the training template
        write_processor_files(item.processor_files, folder)
        check_processor(folder, item.tokenizer.chat_template)
    stray = [p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth")]
    if stray:  # safetensors only: never ship pickles
        raise RuntimeError(f"unexpected pickle files written: {stray}")
