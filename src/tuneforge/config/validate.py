"""Every cross-field rule, in one place. Each broken rule is one UserError naming the field and the fix."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from tuneforge.config.engines import check_engines
from tuneforge.config.eval_loss_keys import check_eval_and_pad_keys
from tuneforge.config.hub_checks import check_hub_keys
from tuneforge.config.method_keys import FREEZE_KEYS, LORA_KEYS, check_method_keys
from tuneforge.config.model_load_checks import check_model_loading
from tuneforge.config.multimodal_args import check_video_keys
from tuneforge.config.preference_checks import check_preference_terms, check_reward_model
from tuneforge.config.ranges import check_ranges
from tuneforge.config.ray_keys import check_ray
from tuneforge.config.stages import REFERENCE_KEYS, STAGE_NAMES, stage_keys, stage_record, stages_where
from tuneforge.config.tracking_checks import check_tracking
from tuneforge.config.trainer_keys import check_eval_num_beams, check_trainer_keys
from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.run_config import RunConfig

__all__ = ["FREEZE_KEYS", "LORA_KEYS", "check_stage", "validate"]  # the method keys' home: config/method_keys.py
SFT_LOSS_KEYS = ("use_dft_loss", "use_asft_loss", "use_eaft_loss")


def validate(cfg: RunConfig) -> None:
    model, data = cfg.model, cfg.data
    check_ranges(cfg)
    check_method_keys(cfg)  # each method's own keys; quantization and adapters need LoRA / OFT
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
    check_ray(cfg)  # USE_RAY / ray_* keys, the ray package: before Ray starts
    check_model_loading(cfg)  # new tokens and their descriptions, quantization_device_map
    check_tracking(cfg)  # SwanLab / profiler keys with their switch, swanlab installed
    check_hub_keys(cfg)  # ms_hub_token needs USE_MODELSCOPE_HUB=1
    _check_methods(cfg)
    _check_sft_losses(cfg)
    check_trainer_keys(cfg)  # Muon, Adam-mini, early stopping, effective tokens/s
    check_eval_and_pad_keys(cfg)  # eval_on_each_dataset, ignore_pad_token_for_loss
    check_video_keys(cfg.given, cfg.where)  # video_max_pixels & co.: a warning, video rows are refused


def check_stage(cfg: RunConfig) -> None:
    """Called by `train`: the stage must be one this version can run."""
    stage = cfg.finetuning.stage
    if stage not in STAGE_NAMES:  # each has its record (config/stages.py) and its recipe, train/<stage>.py
        raise UserError(
            f"stage '{stage}' is not available in this version of TuneForge",
            where=cfg.where("stage"),
            fix=f"use one of: {', '.join(STAGE_NAMES)}",
        )
    if not cfg.model.model_name_or_path:
        raise UserError("model_name_or_path is required", fix="set it to a local model folder or a hub id")
    if not cfg.data.dataset:
        raise UserError("dataset is required", fix="name one or more datasets from dataset_info.json")
    _check_stage_settings(cfg)
    check_eval_num_beams(cfg)


def _check_stage_settings(cfg: RunConfig) -> None:
    """Settings that belong to one stage (the datasets' fit is checked when they load: data/stage_sets.py)."""
    ft, given, stage = cfg.finetuning, cfg.given, cfg.finetuning.stage
    record = stage_record(stage)
    # the keys the stage records own: a stage's own keys first, then those several stages share (pref_beta)
    for key, owners in sorted(stage_keys().items(), key=lambda item: len(item[1])):
        if key in given and stage not in owners:
            _refuse_stage_key(cfg, key, sorted(owners))
    # the reference keys: stages that always load a reference, and those whose switch (ASFT's anchor) is on
    ref_stages = stages_where(lambda r: r.uses_reference(ft))
    for key in REFERENCE_KEYS:
        if key in given and stage not in ref_stages:
            _refuse_stage_key(cfg, key, ref_stages)
    if ft.dpo_label_smoothing and (ft.pref_loss != "sigmoid" or not 0 <= ft.dpo_label_smoothing < 0.5):
        raise UserError(
            "dpo_label_smoothing applies to pref_loss sigmoid, in [0, 0.5)",
            where=cfg.where("dpo_label_smoothing"),
            fix="remove it, or set pref_loss: sigmoid and a value like 0.1",
        )
    if record.needs_reward_model and not ft.reward_model:
        raise UserError(
            f"stage {stage} needs a reward model",
            where=cfg.where("reward_model"),
            fix="set reward_model to the output_dir of a stage: rm run",
        )
    check_reward_model(cfg)
    check_preference_terms(cfg)
    if stage == "dpo" and ft.pref_loss in ("orpo", "simpo") and ft.ref_model:
        raise UserError(
            f"pref_loss {ft.pref_loss} needs no reference model",
            where=cfg.where("ref_model"),
            fix="remove ref_model, or use pref_loss sigmoid / ipo / hinge",
        )
    if ft.ref_model_quantization_bit is not None and not ft.ref_model:
        raise UserError(
            "ref_model_quantization_bit applies to ref_model (without it the reference is the policy's own base)",
            where=cfg.where("ref_model_quantization_bit"),
            fix="set ref_model too, or remove ref_model_quantization_bit",
        )
    if ft.ref_model_adapters and not ft.ref_model:
        raise UserError(
            "ref_model_adapters needs ref_model", where=cfg.where("ref_model_adapters"), fix="set ref_model too"
        )
    for key in ("reward_model_adapters", "reward_model_type", "reward_model_quantization_bit"):
        if key in given and not ft.reward_model:
            raise UserError(f"{key} needs reward_model", where=cfg.where(key), fix="set reward_model too")
    if "pref_beta" in record.keys and ft.pref_beta <= 0:
        raise UserError("pref_beta must be > 0", where=cfg.where("pref_beta"))
    if stage == "ppo" and (ft.ppo_epochs < 1 or ft.ppo_buffer_size < 1):
        raise UserError("ppo_epochs and ppo_buffer_size must be at least 1", where=cfg.where("ppo_epochs"))
    for check in record.checks:  # the stage's own rules (config/stages.py)
        check(cfg)
    if stage == "pt" and cfg.data.cutoff_len < 8:
        raise UserError("stage pt packs text into cutoff_len blocks; use at least 8", where=cfg.where("cutoff_len"))


def _refuse_stage_key(cfg: RunConfig, key: str, owners: list[str]) -> None:
    stage = cfg.finetuning.stage
    if len(owners) == 1:
        raise UserError(
            f"'{key}' is a setting of stage {owners[0]}; this run is stage {stage}",
            where=cfg.where(key),
            fix=f"remove it, or set stage: {owners[0]}",
        )
    raise UserError(
        f"'{key}' is used by stages {', '.join(owners)}; this run is stage {stage}",
        where=cfg.where(key),
        fix="remove it, or choose one of those stages",
    )


def _check_sft_losses(cfg: RunConfig) -> None:
    """DFT / ASFT / EAFT (train/sft_losses.py): one at a time, stage sft, each alpha with its loss."""
    ft = cfg.finetuning
    chosen = [key for key in SFT_LOSS_KEYS if getattr(ft, key)]
    if len(chosen) > 1:
        raise UserError(
            f"{chosen[0]} and {chosen[1]} are alternative SFT losses",
            where=cfg.where(chosen[1]),
            fix="keep one of them",
        )
    if chosen and ft.stage != "sft":
        raise UserError(
            f"{chosen[0]} is an SFT loss; this run is stage {ft.stage}",
            where=cfg.where(chosen[0]),
            fix="remove it, or set stage: sft",
        )
    for alpha, loss in (("asft_alpha", "use_asft_loss"), ("eaft_alpha", "use_eaft_loss")):
        if alpha in cfg.given and not getattr(ft, loss):
            raise UserError(
                f"{alpha} has no effect without {loss}", where=cfg.where(alpha), fix=f"set {loss}: true, or remove it"
            )
    if chosen and cfg.training.get("label_smoothing_factor"):
        raise UserError(
            f"label_smoothing_factor does not apply to the {chosen[0]} loss (it replaces cross-entropy)",
            where=cfg.where("label_smoothing_factor"),
            fix=f"remove label_smoothing_factor or {chosen[0]}",
        )


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
    if packing_keys and not stage_record(ft.stage).packing:
        raise UserError(
            f"{packing_keys[0]} applies to stages {' and '.join(stages_where(lambda r: r.packing))}; "
            f"this run is stage {ft.stage}",
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
    if stage_record(ft.stage).own_loop:  # no TrainingArguments to carry them
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
