"""Export quantization with GPTQ (through transformers' GPTQConfig, backed by the gptqmodel package).

GPTQ calibrates on a CUDA GPU. transformers' GPTQ path needs `optimum` and `gptqmodel`; gptqmodel 7.7 requires
torch >= 2.14.1 and pulls a CUDA build, so it is not installed with TuneForge (checked on the CPU machine, 2026-11).
Without a GPU or those packages the export stops before loading anything, with one error naming what is missing.
"""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.export.save import save_hf, shard_bytes
from tuneforge.utils.devices import has_cuda

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.export.merge import Exportable


def check_quantization(cfg: RunConfig) -> None:
    m = cfg.model
    if m.export_quantization_bit is None:
        return
    if m.export_format != "safetensors":
        raise UserError(
            "export_quantization_bit (GPTQ) writes a Hugging Face folder, not GGUF",
            where=cfg.where("export_quantization_bit"),
            fix="for a quantized GGUF use export_gguf_type: q8_0 and remove export_quantization_bit",
        )
    if not m.export_quantization_dataset:
        raise UserError(
            "export_quantization_bit needs calibration text",
            where=cfg.where("export_quantization_bit"),
            fix="set export_quantization_dataset to a .txt, .json or .jsonl file of sample text",
        )
    if not Path(m.export_quantization_dataset).is_file():
        raise UserError("calibration file not found", where=cfg.where("export_quantization_dataset"))
    needs = (("a CUDA GPU", has_cuda()), ("gptqmodel", _has("gptqmodel")), ("optimum", _has("optimum")))
    missing = [what for what, ok in needs if not ok]
    if missing:
        raise UserError(
            f"GPTQ export quantization needs {' and '.join(missing)} (GPTQ calibrates on a GPU)",
            where=cfg.where("export_quantization_bit"),
            fix="run the export on a machine with an NVIDIA GPU after `pip install gptqmodel optimum`, or remove "
            "export_quantization_bit (or use export_format: gguf with export_gguf_type: q8_0 on a CPU)",
        )


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def calibration_texts(path: str, nsamples: int, seed: int = 0) -> list[str]:
    """Sample texts: a .txt file (one paragraph per blank-line block) or .json/.jsonl rows (`text`, else all
    string values joined)."""
    file = Path(path)
    raw = file.read_text(encoding="utf-8")
    if file.suffix == ".txt":
        texts = [block.strip() for block in raw.split("\n\n") if block.strip()]
    else:
        rows = [json.loads(line) for line in raw.splitlines() if line.strip()] if file.suffix == ".jsonl" else None
        rows = rows if rows is not None else json.loads(raw)
        texts = []
        for row in rows if isinstance(rows, list) else [rows]:
            if isinstance(row, str):
                texts.append(row)
            elif isinstance(row, dict):
                texts.append(
                    row["text"]
                    if isinstance(row.get("text"), str)
                    else "\n".join(v for v in row.values() if isinstance(v, str))
                )
    texts = [t for t in texts if t]
    if not texts:
        raise UserError("no calibration text found", where=f"export_quantization_dataset ({path})")
    random.Random(seed).shuffle(texts)
    return texts[:nsamples]


def quantize_gptq(item: Exportable, cfg: RunConfig, staging: Path, folder: Path) -> None:
    """Save the merged model to `staging`, quantize it from there with GPTQ and save the result into `folder`."""
    from transformers import AutoModelForCausalLM, GPTQConfig  # heavy: only a GPTQ export needs it

    m = cfg.model
    save_hf(item, staging, m.export_size)
    texts = calibration_texts(m.export_quantization_dataset, m.export_quantization_nsamples)
    texts = [item.tokenizer.decode(item.tokenizer(t)["input_ids"][: m.export_quantization_maxlen]) for t in texts]
    config = GPTQConfig(bits=m.export_quantization_bit, dataset=texts, tokenizer=item.tokenizer)
    model = AutoModelForCausalLM.from_pretrained(staging, quantization_config=config, device_map="auto")
    model.save_pretrained(folder, max_shard_size=shard_bytes(m.export_size))
    item.tokenizer.save_pretrained(folder)


# export_quantization_method -> what quantizes the merged model into the export folder (the key's choices)
QUANTIZERS = {"gptq": quantize_gptq}


def quantize(item: Exportable, cfg: RunConfig, staging: Path, folder: Path) -> None:
    """Quantize with the backend export_quantization_method names."""
    QUANTIZERS[cfg.model.export_quantization_method](item, cfg, staging, folder)
