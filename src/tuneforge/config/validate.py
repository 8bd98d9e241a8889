"""Every cross-field rule, in one place. Each broken rule is one UserError naming the field and the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

FREEZE_KEYS = ("freeze_trainable_layers", "freeze_trainable_modules", "freeze_extra_modules")
LORA_KEYS = (
    "lora_rank",
    "lora_alpha",
    "lora_dropout",
    "lora_target",
    "additional_target",
    "loraplus_lr_ratio",
    "use_rslora",
    "use_dora",
    "pissa_init",
    "create_new_adapter",
)
IMPLEMENTED_STAGES = ("sft",)


def validate(cfg: RunConfig) -> None:
    ft, model, data = cfg.finetuning, cfg.model, cfg.data
    given = cfg.given

    def conflict(keys, method):
        for key in keys:
            if key in given:
                raise UserError(
                    f"'{key}' has no effect with finetuning_type: {ft.finetuning_type}",
                    where=cfg.where(key),
                    fix=f"remove it, or set finetuning_type: {method}",
                )

    if ft.finetuning_type != "freeze":
        conflict(FREEZE_KEYS, "freeze")
    if ft.finetuning_type != "lora":
        conflict(LORA_KEYS, "lora")
        if model.quantization_bit is not None:
            raise UserError(
                f"quantization_bit needs LoRA (QLoRA); finetuning_type is {ft.finetuning_type}",
                where=cfg.where("quantization_bit"),
                fix="set finetuning_type: lora, or remove quantization_bit",
            )
        if model.adapter_name_or_path and "adapter_name_or_path" in given:
            raise UserError(
                "adapter_name_or_path is only used with finetuning_type: lora",
                where=cfg.where("adapter_name_or_path"),
                fix="set finetuning_type: lora, or remove adapter_name_or_path",
            )
    if ft.lora_rank < 1:
        raise UserError("lora_rank must be at least 1", where=cfg.where("lora_rank"))
    if not 0 <= ft.lora_dropout < 1:
        raise UserError("lora_dropout must be in [0, 1)", where=cfg.where("lora_dropout"))
    if data.val_size < 0:
        raise UserError("val_size must be >= 0", where=cfg.where("val_size"), fix="use a fraction like 0.1")
    if data.cutoff_len < 2:
        raise UserError("cutoff_len must be at least 2", where=cfg.where("cutoff_len"))
    if data.max_samples is not None and data.max_samples < 1:
        raise UserError("max_samples must be at least 1", where=cfg.where("max_samples"))
    if data.streaming and "max_steps" not in cfg.training:
        raise UserError(
            "streaming needs max_steps (a stream has no length)", where=cfg.where("streaming"), fix="set max_steps"
        )
    if model.export_legacy_format:
        raise UserError(
            "TuneForge writes safetensors only",
            where=cfg.where("export_legacy_format"),
            fix="remove export_legacy_format",
        )
    if model.quantization_method == "eetq" and model.quantization_bit is not None:
        raise UserError(
            "eetq has no installable package for this platform",
            where=cfg.where("quantization_method"),
            fix="use quantization_method: bnb or hqq",
        )
    if model.booster in ("unsloth",) or model.use_unsloth:
        _needs_package("unsloth", cfg.where("booster"))
    if model.booster == "liger_kernel" or model.enable_liger_kernel:
        _needs_package("liger_kernel", cfg.where("booster"))
    if model.booster == "flashattn2" or model.flash_attn == "fa2":
        _needs_package("flash_attn", cfg.where("booster" if model.booster == "flashattn2" else "flash_attn"))
    _check_mixed_precision(cfg)


def check_stage(cfg: RunConfig) -> None:
    """Called by `train`: the stage must be one this version can run."""
    stage = cfg.finetuning.stage
    if stage not in IMPLEMENTED_STAGES:
        raise UserError(
            f"stage '{stage}' is not available in this version of TuneForge",
            where=cfg.where("stage"),
            fix=f"use one of: {', '.join(IMPLEMENTED_STAGES)}",
        )
    if not cfg.model.model_name_or_path:
        raise UserError("model_name_or_path is required", fix="set it to a local model folder or a hub id")
    if not cfg.data.dataset:
        raise UserError("dataset is required", fix="name one or more datasets from dataset_info.json")


def _check_mixed_precision(cfg: RunConfig) -> None:
    tr = cfg.training
    if (tr.get("bf16") or tr.get("fp16")) and "compute_type" in cfg.given:
        raise UserError(
            "set either compute_type or bf16/fp16, not both",
            where=cfg.where("compute_type"),
            fix="keep compute_type and remove bf16/fp16",
        )


def _needs_package(module: str, where: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UserError(
            f"this booster needs the '{module}' package (and a CUDA GPU)",
            where=where,
            fix="install it, or set booster: auto",
        )
