"""Load what is exported: the base (or a full/freeze run folder), its tokenizer fitted to the training template,
and every LoRA adapter merged in and verified."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuneforge.data.template import template_for
from tuneforge.errors import UserError
from tuneforge.export.verify import merge_and_verify
from tuneforge.model.adapters import adapter_paths, load_adapters
from tuneforge.model.loader import check_model_path, load_config, load_model, load_tokenizer
from tuneforge.model.new_tokens import resize_embeddings
from tuneforge.model.vision_parts import is_vision_config
from tuneforge.model.vlm_files import processor_files, vision_chat_template
from tuneforge.utils.devices import has_cuda
from tuneforge.utils.logging import get_logger
from tuneforge.utils.run_folder import template_from_run

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

logger = get_logger(__name__)
DTYPE_NAMES = {"bf16": "bfloat16", "pure_bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


@dataclass
class Exportable:
    model: Any  # a plain transformers model, adapters merged
    tokenizer: Any  # fitted to the template (EOS / stop words), chat_template set to the template
    template: Any
    template_name: str
    adapters: list[str]
    processor_files: dict[str, str] = field(default_factory=dict)  # a VLM's: name -> local path


def export_dtype(cfg: RunConfig):
    """infer_dtype: auto → the dtype the model was saved in (fp32 when it does not say); else the one asked."""
    import torch  # heavy: only a process that exports imports it

    name = cfg.model.infer_dtype
    if name != "auto":
        return getattr(torch, DTYPE_NAMES[name])
    config = load_config(cfg.model)
    saved = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(saved, str):
        saved = getattr(torch, saved, None)
    return saved if saved in (torch.float32, torch.float16, torch.bfloat16) else torch.float32


def check_mergeable(cfg: RunConfig) -> None:
    if cfg.model.quantization_bit is not None:
        raise UserError(
            "cannot merge adapters into a quantized base: the merged weights would be rounded to "
            f"{cfg.model.quantization_bit} bits and could not be saved as a plain model",
            where=cfg.where("quantization_bit"),
            fix="remove quantization_bit: export loads the base in full precision and merges the (Q)LoRA adapter "
            "into it; use export_quantization_bit to quantize the result",
        )


def load_exportable(cfg: RunConfig) -> Exportable:
    check_mergeable(cfg)
    check_model_path(cfg.model.model_name_or_path)
    adapters = adapter_paths(cfg.model)
    # the template: asked for, else the one the LoRA run (or the full/freeze run folder) was trained with
    name = cfg.data.template or template_from_run(adapters) or template_from_run([cfg.model.model_name_or_path])
    tokenizer = load_tokenizer(cfg.model)
    template = template_for(cfg.data, tokenizer, name=name)
    template.fix_tokenizer(tokenizer)
    dtype = export_dtype(cfg)
    model = load_model(cfg.model, dtype, for_training=False)
    resize_embeddings(model, tokenizer, cfg.model)  # as training did: new tokens, a template's stop words
    if cfg.model.export_device == "auto":
        model = model.to("cuda" if has_cuda() else "cpu")
    for path in adapters:  # one at a time, so each merge is checked
        peft_model = load_adapters(model, [path], is_trainable=False)
        model = merge_and_verify(peft_model, where=f"adapter_name_or_path ({path})")
        logger.info("merged adapter %s", path)
    model = model.to("cpu").eval()
    model.config.use_cache = True
    tokenizer.chat_template = template.to_jinja()  # plain apply_chat_template renders what training saw
    files = {}
    if is_vision_config(model.config):  # its processor goes with it; the template also reads image parts
        files = processor_files(cfg.model)
        tokenizer.chat_template = vision_chat_template(tokenizer.chat_template, getattr(template, "mm_plugin", None))
    return Exportable(model, tokenizer, template, template.name, adapters, files)
