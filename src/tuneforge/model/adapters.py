"""Make the right weights trainable: full, freeze (last/first n layers), or LoRA adapters in peft's format."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.model.quantize import is_quantized, prepare_for_kbit_training
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.finetuning_args import FinetuningArguments

logger = get_logger(__name__)
_LAYER = re.compile(r"\.(\d+)\.")


def split_names(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def linear_module_names(model) -> list[str]:
    """Short names of every linear layer inside the transformer blocks (what lora_target: all means)."""
    import torch  # torch / peft: imported by the process that loads a model, not by `import`

    names = set()
    output = model.get_output_embeddings()
    for full_name, module in model.named_modules():
        linear = isinstance(module, torch.nn.Linear) or type(module).__name__ == "HQQLinear"  # hqq's is a Module
        if linear and module is not output and _LAYER.search(full_name + "."):
            names.add(full_name.split(".")[-1])
    return sorted(names)


def setup_full(model) -> None:
    for param in model.parameters():
        param.requires_grad_(True)


def setup_freeze(model, args: FinetuningArguments) -> None:
    n_layers = model.config.num_hidden_layers
    k = args.freeze_trainable_layers
    if k == 0 or abs(k) > n_layers:
        raise UserError(
            f"freeze_trainable_layers is {k}, the model has {n_layers} layers",
            where="freeze_trainable_layers",
            fix=f"use 1..{n_layers} (last layers) or -1..-{n_layers} (first layers)",
        )
    layer_ids = range(n_layers - k, n_layers) if k > 0 else range(-k)
    modules = split_names(args.freeze_trainable_modules)
    extra = split_names(args.freeze_extra_modules)
    layer_modules = {m.split(".")[0] for name, _ in model.named_parameters() if (m := _after_layer(name))}
    for module in modules:
        if module != "all" and module not in layer_modules:
            raise UserError(
                f"no module '{module}' in the model's layers",
                where="freeze_trainable_modules",
                fix=f"use all or some of: {', '.join(sorted(layer_modules))}",
            )
    all_names = [name for name, _ in model.named_parameters()]
    for module in extra:
        if not any(f".{module}." in f".{name}" for name in all_names):
            raise UserError(f"no module '{module}' in the model", where="freeze_extra_modules")
    trained = 0
    for name, param in model.named_parameters():
        match = _LAYER.search(name)
        in_layer = match is not None and int(match.group(1)) in layer_ids
        module_ok = "all" in modules or any(_after_layer(name).startswith(m + ".") for m in modules)
        extra_ok = any(f".{m}." in f".{name}" for m in extra)
        param.requires_grad_(bool(in_layer and module_ok) or extra_ok)
        trained += param.numel() if param.requires_grad else 0
    if trained == 0:
        raise UserError("freeze settings leave no weight trainable", where="freeze_trainable_modules")
    logger.info("freeze: training layers %s (%s)", list(layer_ids), ",".join(modules))


def _after_layer(name: str) -> str:
    match = _LAYER.search(name)
    return name[match.end() :] if match else ""


def load_adapters(model, adapter_paths: list[str], is_trainable: bool):
    """Load adapters in order; all but the last are merged. The last stays an adapter (trainable if asked)."""
    from peft import PeftModel

    for i, path in enumerate(adapter_paths):
        if not (Path(path) / "adapter_config.json").is_file():
            raise UserError(
                "not a LoRA adapter folder (no adapter_config.json)",
                where=f"adapter_name_or_path ({path})",
                fix="point it at a folder written by a LoRA run (its output_dir or a checkpoint-N)",
            )
        last = i == len(adapter_paths) - 1
        from safetensors import SafetensorError

        try:
            model = PeftModel.from_pretrained(model, path, is_trainable=is_trainable and last)
        except SafetensorError as exc:  # truncated or corrupt adapter_model.safetensors
            raise UserError(
                f"cannot read the adapter weights: {str(exc).splitlines()[0][:200]}",
                where=f"adapter_name_or_path ({path})",
                fix="the adapter_model.safetensors file is damaged: copy it again or retrain",
            ) from exc
        except (RuntimeError, ValueError, KeyError) as exc:
            raise UserError(
                f"adapter does not fit this base model: {str(exc).splitlines()[0][:200]}",
                where=f"adapter_name_or_path ({path})",
                fix="use the base model the adapter was trained on",
            ) from exc
        if not last:
            model = model.merge_and_unload()
    return model


def setup_lora(model, args: FinetuningArguments, adapter_paths: list[str]):
    from peft import LoraConfig, get_peft_model

    if is_quantized(model):
        if args.pissa_init:
            raise UserError(
                "PiSSA initialises LoRA from the SVD of full-precision weights; it cannot start from a quantized base",
                where="pissa_init",
                fix="remove quantization_bit, or set pissa_init: false",
            )
        prepare_for_kbit_training(model)
    if adapter_paths and not args.create_new_adapter:
        logger.info("continuing to train adapter %s", adapter_paths[-1])
        return load_adapters(model, adapter_paths, is_trainable=True)
    if adapter_paths:
        model = load_adapters(model, adapter_paths, is_trainable=False).merge_and_unload()
    available = linear_module_names(model)
    targets = split_names(args.lora_target)
    if targets == ["all"]:
        targets = available
    unknown = [t for t in targets if t not in available]
    if unknown:
        raise UserError(
            f"lora_target names modules the model does not have: {', '.join(unknown)}",
            where="lora_target",
            fix=f"use all, or some of: {', '.join(available)}",
        )
    config = LoraConfig(
        # a reward model (stage rm) is a sequence classifier: peft then trains and saves its score head too
        task_type="SEQ_CLS" if type(model).__name__.endswith("ForSequenceClassification") else "CAUSAL_LM",
        r=args.lora_rank,
        lora_alpha=args.effective_lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=targets,
        modules_to_save=split_names(args.additional_target) or None,
        use_rslora=args.use_rslora,
        use_dora=args.use_dora,
        init_lora_weights=_lora_init(args),
    )
    return get_peft_model(model, config)


def _lora_init(args: FinetuningArguments):
    if not args.pissa_init:
        return True
    return "pissa" if args.pissa_iter == -1 else f"pissa_niter_{args.pissa_iter}"  # fast SVD with n iterations


def prepare_trainable(model, args: FinetuningArguments, adapter_paths: list[str]):
    if args.finetuning_type == "full":
        setup_full(model)
    elif args.finetuning_type == "freeze":
        setup_freeze(model, args)
    else:
        model = setup_lora(model, args, adapter_paths)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info("trainable params: %s / %s (%.2f%%)", f"{trainable:,}", f"{total:,}", 100 * trainable / total)
    return model
