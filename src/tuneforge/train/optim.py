"""Optimizers beyond the Trainer's default: LoRA+ parameter groups, GaLore, APOLLO, BAdam, Muon and Adam-mini.

`optimizers_for(cfg, model, args)` gives the `optimizers=` pair for any HF / TRL Trainer: `(None, None)` (the
Trainer builds its own) unless a method needs its own optimizer (LoRA+, BAdam; Muon and Adam-mini in train/muon.py,
train/adam_mini.py). The scheduler stays the
Trainer's; it scales every group's learning rate by the same factor, so group ratios hold for the whole run.
GaLore and APOLLO are built into transformers' Trainer: `optimizer_training_args(cfg)` translates our keys
(LLaMA-Factory's) into its `optim`, `optim_target_modules` and `optim_args`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.train.adam_mini import adam_mini_optimizer
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.finetuning_args import FinetuningArguments
    from tuneforge.config.loader import RunConfig

logger = get_logger(__name__)


def _decay_names(model) -> set[str]:
    """The parameters the Trainer would decay (not norms or biases): its own rule, which never reads `self`."""
    from transformers import Trainer  # late, as in every function here: transformers loads torch (seconds)

    return set(Trainer.get_decay_parameter_names(None, model))


def loraplus_param_groups(model, lr: float, weight_decay: float, ft: FinetuningArguments) -> list[dict]:
    """LoRA+ (Hayou et al. 2024): the B matrices learn `loraplus_lr_ratio` times faster than A.
    B matrices of embedding layers get `loraplus_lr_embedding`. Norms and biases get no weight decay."""
    ratio = ft.loraplus_lr_ratio
    decay = _decay_names(model)
    groups = {
        "lora_a": {"params": [], "lr": lr, "weight_decay": weight_decay},
        "lora_b": {"params": [], "lr": lr * ratio, "weight_decay": weight_decay},
        "lora_b_nodecay": {"params": [], "lr": lr * ratio, "weight_decay": 0.0},
        "embedding": {"params": [], "lr": ft.loraplus_lr_embedding, "weight_decay": weight_decay},
        "other_nodecay": {"params": [], "lr": lr, "weight_decay": 0.0},
    }
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if "lora_embedding_B" in name:
            groups["embedding"]["params"].append(param)
        elif "lora_B" in name:
            groups["lora_b" if name in decay else "lora_b_nodecay"]["params"].append(param)
        elif name in decay:
            groups["lora_a"]["params"].append(param)
        else:
            groups["other_nodecay"]["params"].append(param)
    if not groups["lora_b"]["params"] and not groups["lora_b_nodecay"]["params"]:
        raise UserError("loraplus_lr_ratio found no LoRA B matrix to train", where="loraplus_lr_ratio")
    return [{"name": key, **group} for key, group in groups.items() if group["params"]]


# all linear layers inside the transformer blocks (not the embeddings or the head), as a regex on module names
IN_BLOCKS = r".*\.\d+\..+"


def _targets(value: str) -> str | list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    return IN_BLOCKS if names == ["all"] else names


# use_<method>: transformers' optimizer, and its `optim_args` names -> our `<method>_` keys (LLaMA-Factory's)
LOW_RANK_OPTIMIZERS = {
    "galore": (
        "galore_adamw",
        {"rank": "rank", "update_proj_gap": "update_interval", "scale": "scale", "proj_type": "proj_type"},
    ),
    "apollo": (
        "apollo_adamw",
        {
            "rank": "rank",
            "update_proj_gap": "update_interval",
            "scale": "scale",
            "proj": "proj",
            "scale_type": "scale_type",
            "proj_type": "proj_type",  # apollo_scale_front: train/apollo_front.py (not an optim_arg)
        },
    ),
}


def optimizer_training_args(cfg: RunConfig) -> dict:
    """TrainingArguments keys for GaLore / APOLLO (transformers builds those optimizers itself)."""
    ft = cfg.finetuning
    method = next((m for m in LOW_RANK_OPTIMIZERS if getattr(ft, f"use_{m}")), None)
    if method is None:
        return {}
    optim, arg_keys = LOW_RANK_OPTIMIZERS[method]
    own = {key: getattr(ft, f"{method}_{key}") for key in ("layerwise", "target", *arg_keys.values())}
    return {
        "optim": f"{optim}_layerwise" if own["layerwise"] else optim,
        "optim_target_modules": _targets(own["target"]),
        "optim_args": ",".join(f"{name}={own[key]}" for name, key in arg_keys.items()),
    }


def _badam_optimizer(model, args, ft: FinetuningArguments):
    """BAdam: block coordinate descent; only the current block of layers is updated, switching every
    `badam_switch_interval` steps. The base optimizer is the Trainer's (AdamW)."""
    from badam import BlockOptimizer  # late: an optional package, needed only with use_badam
    from transformers import Trainer

    optim_cls, optim_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    decay = _decay_names(model)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in named if n in decay], "weight_decay": args.weight_decay},
        {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
    ]
    return BlockOptimizer(
        base_optimizer=optim_cls(groups, **optim_kwargs),
        named_parameters_list=list(model.named_parameters()),
        block_prefix_list=None,
        switch_block_every=ft.badam_switch_interval,
        start_block=ft.badam_start_block,
        switch_mode=ft.badam_switch_mode,
        verbose=ft.badam_verbose,
    )


def _muon_optimizer(model, args):
    from tuneforge.train.muon import muon_optimizer  # late: that module subclasses torch's Optimizer (loads torch)

    return muon_optimizer(model, args)


# use_<name> -> its builder (model, TrainingArguments) -> optimizer
OTHER_OPTIMIZERS = {"use_muon": _muon_optimizer, "use_adam_mini": adam_mini_optimizer}
# the keys that bring their own optimizer (checked at config load: one at a time, config/validate.py)
OWN_OPTIMIZERS = ("use_badam", "loraplus_lr_ratio", *OTHER_OPTIMIZERS)


def build_optimizer(model, args, ft: FinetuningArguments):
    """The optimizer for `model` under training arguments `args`, or None for the Trainer's default."""
    key = next((k for k in OWN_OPTIMIZERS if getattr(ft, k) not in (None, False)), None)
    if key is None:
        return None
    if getattr(args, "deepspeed", None) or getattr(args, "fsdp", None):
        raise UserError(
            f"{key} builds its own optimizer, which the Trainer does not accept with DeepSpeed or FSDP",
            where=key,
            fix=f"remove {key}, or train without deepspeed / fsdp",
        )
    if ft.use_badam:
        return _badam_optimizer(model, args, ft)
    if key in OTHER_OPTIMIZERS:  # Muon, Adam-mini: a module each
        return OTHER_OPTIMIZERS[key](model, args)
    if ft.finetuning_type != "lora":
        raise UserError("loraplus_lr_ratio needs finetuning_type: lora", where="loraplus_lr_ratio")
    if ft.loraplus_lr_ratio <= 0:
        raise UserError("loraplus_lr_ratio must be > 0 (16 is typical)", where="loraplus_lr_ratio")
    from transformers import Trainer

    optim_cls, optim_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    optim_kwargs = {k: v for k, v in optim_kwargs.items() if k != "lr"}
    groups = loraplus_param_groups(model, args.learning_rate, args.weight_decay, ft)
    logger.info(
        "LoRA+: B matrices at lr %.3g (%g × %.3g)",
        args.learning_rate * ft.loraplus_lr_ratio,
        ft.loraplus_lr_ratio,
        args.learning_rate,
    )
    return optim_cls(groups, lr=args.learning_rate, **optim_kwargs)


def optimizers_for(cfg: RunConfig, model, args) -> tuple:
    """What to pass as a Trainer's `optimizers=`: (optimizer or None, None: the Trainer's scheduler)."""
    return build_optimizer(model, args, cfg.finetuning), None
