"""`tuneforge export`: check everything that can be checked first, merge, then write into a staged folder."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.export import save
from tuneforge.export.gguf_file import check_gguf_arch, write_gguf
from tuneforge.export.hub_push import check_hub_repo_id, push_export
from tuneforge.export.merge import check_mergeable, load_exportable
from tuneforge.export.ollama import modelfile
from tuneforge.export.quantize import check_quantization, quantize
from tuneforge.export.target import check_export_dir, staged_folder
from tuneforge.export.vision import check_vision_export, is_vision_export
from tuneforge.model.hubs import resolve_model_source
from tuneforge.model.loader import check_model_path, load_config
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

logger = get_logger(__name__)
GGUF_FILE = "model.gguf"


def check_export(cfg: RunConfig) -> Path:
    """Every refusal that needs no model loaded: the folder, the options, the hardware. Returns the folder."""
    m = cfg.model
    path = check_export_dir(m.export_dir, m.export_overwrite, where=cfg.where("export_dir"))
    resolve_model_source(m)  # USE_MODELSCOPE_HUB=1: a ModelScope id becomes its local snapshot folder
    check_model_path(m.model_name_or_path)
    if m.export_size <= 0:
        raise UserError("export_size must be above 0 (GB)", where=cfg.where("export_size"))
    check_mergeable(cfg)
    if is_vision_export(cfg):  # before the text-model checks: a VLM refuses GPTQ and GGUF for its own reasons
        check_vision_export(cfg)
    check_quantization(cfg)
    if m.export_format == "gguf":
        check_gguf_arch(load_config(m), where=cfg.where("export_format"))
    if m.export_hub_model_id:
        check_hub_repo_id(cfg)
    return path


def run_export(cfg: RunConfig) -> Path:
    m = cfg.model
    path = check_export(cfg)
    item = load_exportable(cfg)
    info = {
        "format": m.export_format,
        "gguf_type": m.export_gguf_type if m.export_format == "gguf" else None,
        "quantization_bit": m.export_quantization_bit,
        "quantization_method": m.export_quantization_method if m.export_quantization_bit is not None else None,
        "template": item.template_name,
        "dtype": str(item.model.dtype).removeprefix("torch."),
        "config": cfg.to_dict(),
    }
    with staged_folder(path, info) as folder:
        if m.export_format == "gguf":
            write_gguf(item, folder / GGUF_FILE, m.export_gguf_type, name=path.name)
            (folder / "Modelfile").write_text(
                modelfile(item.template, item.tokenizer, GGUF_FILE, cfg.data.default_system), "utf-8"
            )
        elif m.export_quantization_bit is not None:
            with tempfile.TemporaryDirectory(prefix=".staging-", dir=folder.parent) as staging:
                quantize(item, cfg, Path(staging), folder)  # export_quantization_method
        else:
            save.save_hf(item, folder, m.export_size)
    logger.info("exported to %s", path)
    if m.export_hub_model_id:
        push_export(path, cfg)  # after the export is complete: a failed push loses nothing
    return path
