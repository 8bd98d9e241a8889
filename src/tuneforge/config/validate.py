"""Every cross-field rule, in one place. Each broken rule is one UserError naming the field and the fix."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, get_args

from tuneforge.config.engines import check_engines
from tuneforge.config.finetuning_args import Stage
from tuneforge.config.ranges import check_ranges
from tuneforge.config.refusals import check_refused
from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.run_config import RunConfig

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
    "pissa_iter",
    "pissa_convert",
    "loraplus_lr_embedding",
    "create_new_adapter",
)
IMPLEMENTED_STAGES = get_args(Stage)  # each has its recipe, train/<stage>.py


def validate(cfg: RunConfig) -> None:
    ft, model, data = cfg.finetuning, cfg.model, cfg.data
    given = cfg.given
    check_ranges(cfg)
    check_refused(cfg)

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
            "eetq needs the eetq package and a CUDA GPU; it has no installable package for this platform",
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
    check_engines(cfg)  # deepspeed file / package, FSDP hardware: before torchrun starts
    _check_methods(cfg)


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
    _check_stage_settings(cfg)


def _check_stage_settings(cfg: RunConfig) -> None:
    """Settings that belong to one stage (the datasets' fit is checked when they load: data/stage_sets.py)."""
    ft, given, stage = cfg.finetuning, cfg.given, cfg.finetuning.stage
    owners = {
        "dpo": ("pref_loss", "pref_ftx", "simpo_gamma", "dpo_label_smoothing"),
        "kto": ("kto_chosen_weight", "kto_rejected_weight"),
        "ppo": ("reward_model", "reward_model_type", "reward_model_adapters")
        + ("ppo_buffer_size", "ppo_epochs", "ppo_score_norm", "ppo_target", "ppo_whiten_rewards"),
    }
    for owner, keys in owners.items():
        for key in keys:
            if key in given and stage != owner:
                raise UserError(
                    f"'{key}' is a setting of stage {owner}; this run is stage {stage}",
                    where=cfg.where(key),
                    fix=f"remove it, or set stage: {owner}",
                )
    for key, stages in (("ref_model", ("dpo", "kto", "ppo")), ("ref_model_adapters", ("dpo", "kto", "ppo"))) + (
        ("pref_beta", ("dpo", "kto")),
    ):
        if key in given and stage not in stages:
            raise UserError(
                f"'{key}' is used by stages {', '.join(stages)}; this run is stage {stage}",
                where=cfg.where(key),
                fix="remove it, or choose one of those stages",
            )
    if ft.dpo_label_smoothing and (ft.pref_loss != "sigmoid" or not 0 <= ft.dpo_label_smoothing < 0.5):
        raise UserError(
            "dpo_label_smoothing applies to pref_loss sigmoid, in [0, 0.5)",
            where=cfg.where("dpo_label_smoothing"),
            fix="remove it, or set pref_loss: sigmoid and a value like 0.1",
        )
    if stage == "ppo" and not ft.reward_model:
        raise UserError(
            "stage ppo needs a reward model",
            where=cfg.where("reward_model"),
            fix="set reward_model to the output_dir of a stage: rm run",
        )
    if stage == "ppo" and ft.reward_model_type != "full":
        raise UserError(
            f"reward_model_type {ft.reward_model_type} is not supported yet",
            where=cfg.where("reward_model_type"),
            fix="use reward_model_type: full (a separate reward model, full or LoRA rm run)",
        )
    if stage == "dpo" and ft.pref_loss in ("orpo", "simpo") and ft.ref_model:
        raise UserError(
            f"pref_loss {ft.pref_loss} needs no reference model",
            where=cfg.where("ref_model"),
            fix="remove ref_model, or use pref_loss sigmoid / ipo / hinge",
        )
    if ft.ref_model_adapters and not ft.ref_model:
        raise UserError(
            "ref_model_adapters needs ref_model", where=cfg.where("ref_model_adapters"), fix="set ref_model too"
        )
    if ft.reward_model_adapters and not ft.reward_model:
        raise UserError(
            "reward_model_adapters needs reward_model",
            where=cfg.where("reward_model_adapters"),
            fix="set reward_model too",
        )
    if stage in ("dpo", "kto") and ft.pref_beta <= 0:
        raise UserError("pref_beta must be > 0", where=cfg.where("pref_beta"))
    if stage == "ppo" and (ft.ppo_epochs < 1 or ft.ppo_buffer_size < 1):
        raise UserError("ppo_epochs and ppo_buffer_size must be at least 1", where=cfg.where("ppo_epochs"))
    if stage == "pt" and cfg.data.cutoff_len < 8:
        raise UserError("stage pt packs text into cutoff_len blocks; use at least 8", where=cfg.where("cutoff_len"))


def _check_methods(cfg: RunConfig) -> None:
    """Quantization, LoRA variants and packing: combinations that cannot work, or settings with no effect."""
    ft, model, data, given = cfg.finetuning, cfg.model, cfg.data, cfg.given
    bits, method = model.quantization_bit, model.quantization_method
    if "quantization_type" in given and not (bits == 4 and method == "bnb"):
        raise UserError(
            "quantization_type applies to 4-bit bitsandbytes only",
            where=cfg.where("quantization_type"),
            fix="set quantization_bit: 4 and quantization_method: bnb, or remove quantization_type",
        )
    if "double_quantization" in given and not (bits == 4 and method == "bnb"):
        raise UserError(
            "double_quantization applies to 4-bit bitsandbytes only",
            where=cfg.where("double_quantization"),
            fix="set quantization_bit: 4 and quantization_method: bnb, or remove double_quantization",
        )
    if ft.pissa_init and bits is not None:
        raise UserError(
            "PiSSA initialises LoRA from the SVD of full-precision weights; it cannot start from a quantized base",
            where=cfg.where("pissa_init"),
            fix="remove quantization_bit, or set pissa_init: false",
        )
    if ft.pissa_convert and not ft.pissa_init:
        raise UserError("pissa_convert needs pissa_init: true", where=cfg.where("pissa_convert"))
    if ft.loraplus_lr_ratio is not None and ft.loraplus_lr_ratio <= 0:
        raise UserError("loraplus_lr_ratio must be > 0 (16 is typical)", where=cfg.where("loraplus_lr_ratio"))
    packing_keys = [k for k in ("packing", "neat_packing") if given.get(k)]
    if packing_keys and ft.stage not in ("sft", "pt"):
        raise UserError(
            f"{packing_keys[0]} applies to stages sft and pt; this run is stage {ft.stage}",
            where=cfg.where(packing_keys[0]),
            fix=f"remove {packing_keys[0]}",
        )
    if packing_keys and data.streaming:
        raise UserError(
            "packing sorts the whole dataset by length; it cannot stream",
            where=cfg.where(packing_keys[0]),
            fix="set streaming: false, or remove packing",
        )
    _check_optimizers(cfg)
    # LoRA+, BAdam and PiSSA conversion bring their own optimizer or callbacks: wired into the sft recipe
    # (train/optim.py, train/methods.py). GaLore / APOLLO go through TrainingArguments: every Trainer-based stage.
    blocked = [k for k in ("loraplus_lr_ratio", "use_badam", "pissa_convert") if given.get(k) not in (None, False)]
    blocked = blocked if ft.stage != "sft" else []
    if ft.stage == "ppo":
        blocked += [k for k in ("use_galore", "use_apollo") if given.get(k)]
    if blocked:
        raise UserError(
            f"{blocked[0]} is not available for stage {ft.stage} yet (it is for sft)",
            where=cfg.where(blocked[0]),
            fix=f"remove {blocked[0]}, or train stage sft",
        )
    if data.neat_packing and given.get("packing") is False:
        raise UserError(
            "neat_packing is a kind of packing; packing: false contradicts it",
            where=cfg.where("neat_packing"),
            fix="remove packing: false",
        )


OPTIMIZERS = {"use_galore": "galore_torch", "use_apollo": "apollo_torch", "use_badam": "badam"}


def _check_optimizers(cfg: RunConfig) -> None:
    """GaLore / APOLLO / BAdam: full fine-tuning only, one at a time, and only where the package is installed."""
    ft = cfg.finetuning
    chosen = [key for key in OPTIMIZERS if getattr(ft, key)]
    for prefix in ("galore_", "apollo_", "badam_"):
        owner = "use_" + prefix.rstrip("_")
        for key in cfg.given:
            if key.startswith(prefix) and not getattr(ft, owner):
                raise UserError(f"'{key}' has no effect without {owner}: true", where=cfg.where(key))
    if not chosen:
        return
    if len(chosen) > 1:
        raise UserError(f"{' and '.join(chosen)} cannot be combined", where=cfg.where(chosen[1]), fix="choose one")
    key = chosen[0]
    if ft.finetuning_type != "full":
        raise UserError(
            f"{key} is an optimizer for full fine-tuning; finetuning_type is {ft.finetuning_type}",
            where=cfg.where(key),
            fix="set finetuning_type: full",
        )
    module = OPTIMIZERS[key]
    if importlib.util.find_spec(module) is None:
        package = module.replace("_", "-")
        raise UserError(
            f"{key} needs the '{package}' package, which is not installed",
            where=cfg.where(key),
            fix=f"pip install {package}",
        )
    if ft.use_badam and ft.badam_mode == "ratio":
        raise UserError(
            "badam_mode ratio is not supported: its sparse gradients break the Trainer's gradient-norm step",
            where=cfg.where("badam_mode"),
            fix="use badam_mode: layer",
        )
    layerwise = (ft.use_galore and ft.galore_layerwise) or (ft.use_apollo and ft.apollo_layerwise)
    if layerwise and int(cfg.training.get("gradient_accumulation_steps", 1)) != 1:
        raise UserError(
            "layer-wise GaLore / APOLLO updates during the backward pass: no gradient accumulation",
            where=cfg.where("gradient_accumulation_steps"),
            fix="set gradient_accumulation_steps: 1, or turn the layer-wise option off",
        )


def _check_mixed_precision(cfg: RunConfig) -> None:
    tr = cfg.training
    if (tr.get("bf16") or tr.get("fp16")) and "compute_type" in cfg.given:
        raise UserError(
            "set either compute_type or bf16/fp16, not both",
            where=cfg.where("compute_type"),
            fix="keep compute_type and remove bf16/fp16",
        )


def _needs_package(module: str, where: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise UserError(
            f"this booster needs the '{module}' package (and a CUDA GPU)",
            where=where,
            fix="install it, or set booster: auto",
        )
