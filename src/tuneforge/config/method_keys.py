"""Which keys belong to which finetuning_type, and the rules of the methods' own settings (LoRA, OFT, freeze,
LLaMA Pro): a key set for another method is one line naming it, never silently unused."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.run_config import RunConfig

FREEZE_KEYS = ("freeze_trainable_layers", "freeze_trainable_modules", "freeze_extra_modules")
ADAPTER_KEYS = ("additional_target", "create_new_adapter")  # any peft adapter (LLaMA-Factory: LoRA and OFT)
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
    "pissa_iter",
    "pissa_convert",
    "loraplus_lr_embedding",
    "create_new_adapter",
)
OFT_KEYS = ("oft_rank", "oft_block_size", "oft_target", "module_dropout", *ADAPTER_KEYS)
METHOD_KEYS = {"freeze": FREEZE_KEYS, "lora": LORA_KEYS, "oft": OFT_KEYS}
INSTEAD = {("lora_target", "oft"): "OFT's modules are set by oft_target: use it instead"}


def check_method_keys(cfg: RunConfig) -> None:
    ft, model, given = cfg.finetuning, cfg.model, cfg.given
    method = ft.finetuning_type
    own = set(METHOD_KEYS.get(method, ()))
    if ft.use_llama_pro:
        own.add("freeze_trainable_layers")  # the number of expanded blocks, for an adapter too
    for other, keys in METHOD_KEYS.items():
        for key in keys:
            if other != method and key in given and key not in own:
                raise UserError(
                    f"'{key}' has no effect with finetuning_type: {method}",
                    where=cfg.where(key),
                    fix=INSTEAD.get((key, method), f"remove it, or set finetuning_type: {other}"),
                )
    if not ft.uses_adapter:
        if model.quantization_bit is not None:
            raise UserError(
                f"quantization_bit needs LoRA or OFT (a quantized base is frozen); finetuning_type is {method}",
                where=cfg.where("quantization_bit"),
                fix="set finetuning_type: lora or oft, or remove quantization_bit",
            )
        if model.adapter_name_or_path and "adapter_name_or_path" in given:
            raise UserError(
                f"adapter_name_or_path is only used with finetuning_type: lora or oft; it is {method}",
                where=cfg.where("adapter_name_or_path"),
                fix="set finetuning_type: lora (or oft, for an OFT adapter), or remove adapter_name_or_path",
            )
    if method == "oft":
        _check_oft(cfg)
    if ft.use_llama_pro:
        _check_llama_pro(cfg)


def _check_oft(cfg: RunConfig) -> None:
    ft = cfg.finetuning
    if ft.oft_rank and ft.oft_block_size:
        raise UserError(
            f"oft_rank ({ft.oft_rank}) and oft_block_size ({ft.oft_block_size}) are both set: rank x block size is "
            "the layer's width, so give one",
            where=cfg.where("oft_rank" if "oft_rank" in cfg.given else "oft_block_size"),
            fix="set oft_block_size: 0 to use oft_rank, or oft_rank: 0 to use oft_block_size",
        )
    if not ft.oft_rank and not ft.oft_block_size:
        raise UserError(
            "oft_rank and oft_block_size are both 0",
            where=cfg.where("oft_block_size"),
            fix="set oft_block_size (e.g. 32) or oft_rank",
        )


def _check_llama_pro(cfg: RunConfig) -> None:
    ft = cfg.finetuning
    if ft.finetuning_type == "full":
        raise UserError(
            "use_llama_pro trains only the expanded blocks; finetuning_type full trains every weight",
            where=cfg.where("use_llama_pro"),
            fix="set finetuning_type: freeze (or lora / oft)",
        )
    if ft.freeze_trainable_layers <= 0:
        raise UserError(
            f"use_llama_pro needs freeze_trainable_layers = the number of expanded blocks; it is "
            f"{ft.freeze_trainable_layers}",
            where=cfg.where("freeze_trainable_layers"),
            fix="set it to the --num-expand given to `tuneforge llama-pro`",
        )
