"""Make the right weights trainable: full, freeze (last/first n layers, or LLaMA Pro's expanded blocks), or LoRA /
OFT adapters in peft's format."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.model.llama_pro import expanded_layer_ids
from tuneforge.model.new_tokens import keeps_tied_vocab, vocab_module_names
from tuneforge.model.oft_dropout import enable_module_dropout
from tuneforge.model.quantize import is_quantized, prepare_for_kbit_training
from tuneforge.model.vision_parts import (
    freeze_parts,
    is_vision_config,
    lora_short_names,
    lora_targets,
    projector_modules,
)
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.finetuning_args import FinetuningArguments
    from tuneforge.config.model_args import ModelArguments
    from tuneforge.config.multimodal_args import MultimodalArguments

logger = get_logger(__name__)
_LAYER = re.compile(r"\.(\d+)\.")


def split_names(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def adapter_paths(args: ModelArguments) -> list[str]:
    """The folders of adapter_name_or_path, each joined with adapter_folder when set (LF passes it to peft as
    `subfolder`: the adapter's files sit in that sub-folder)."""
    paths = split_names(args.adapter_name_or_path)
    return [str(Path(p) / args.adapter_folder) for p in paths] if args.adapter_folder else paths


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
    n_layers = model.config.get_text_config().num_hidden_layers  # a VLM's: its language model's
    k = args.freeze_trainable_layers
    if k == 0 or abs(k) > n_layers:
        raise UserError(
            f"freeze_trainable_layers is {k}, the model has {n_layers} layers",
            where="freeze_trainable_layers",
            fix=f"use 1..{n_layers} (last layers) or -1..-{n_layers} (first layers)",
        )
    if args.use_llama_pro:
        layer_ids = expanded_layer_ids(n_layers, k)
    else:
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
    """Load adapters (LoRA, OFT: any peft adapter) in order; all but the last are merged. The last stays an adapter
    (trainable if asked)."""
    from peft import PeftModel

    for i, path in enumerate(adapter_paths):
        if not (Path(path) / "adapter_config.json").is_file():
            raise UserError(
                "not an adapter folder (no adapter_config.json)",
                where=f"adapter_name_or_path ({path})",
                fix="point it at a folder written by a LoRA or OFT run (its output_dir or a checkpoint-N)",
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


def setup_lora(model, args: FinetuningArguments, adapter_paths: list[str], mm: MultimodalArguments | None = None):
    from peft import LoraConfig, get_peft_model

    if is_quantized(model):
        if args.pissa_init:
            raise UserError(
                "PiSSA initialises LoRA from the SVD of full-precision weights; it cannot start from a quantized base",
                where="pissa_init",
                fix="remove quantization_bit, or set pissa_init: false",
            )
        prepare_for_kbit_training(model)
    model, resumed = _start_adapter(model, args, adapter_paths)
    if resumed:
        return model
    config = LoraConfig(
        task_type=_task_type(model),
        r=args.lora_rank,
        lora_alpha=args.effective_lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=_targets(model, args.lora_target, "lora_target", mm),
        modules_to_save=_modules_to_save(model, args, mm),
        ensure_weight_tying=keeps_tied_vocab(model),  # a tied embedding + head stay one trained matrix
        use_rslora=args.use_rslora,
        use_dora=args.use_dora,
        init_lora_weights=_lora_init(args),
        **_llama_pro_layers(model, args),
    )
    return get_peft_model(model, config)


def setup_oft(model, args: FinetuningArguments, adapter_paths: list[str], mm: MultimodalArguments | None = None):
    """OFT (Qiu et al. 2023): each target layer's input is rotated by a trained block-diagonal orthogonal matrix
    (peft's OFTConfig with LLaMA-Factory's arguments: r = oft_rank or blocks of oft_block_size, module_dropout)."""
    from peft import OFTConfig, get_peft_model

    if is_quantized(model):
        prepare_for_kbit_training(model)
    model, resumed = _start_adapter(model, args, adapter_paths)
    if resumed:
        enable_module_dropout(model)  # the continued adapter's own module_dropout
        return model
    config = OFTConfig(
        task_type=_task_type(model),
        r=args.oft_rank,
        oft_block_size=args.oft_block_size,
        module_dropout=args.module_dropout,
        target_modules=_targets(model, args.oft_target, "oft_target", mm),
        modules_to_save=_modules_to_save(model, args, mm),
        **_llama_pro_layers(model, args),
    )
    model = get_peft_model(model, config)
    enable_module_dropout(model)  # peft builds the dropout but never applies it
    return model


def _start_adapter(model, args: FinetuningArguments, adapter_paths: list[str]):
    """(model, resumed): continue training the last adapter of adapter_name_or_path, or merge them all and return the
    base for a new adapter (create_new_adapter, or none given)."""
    if adapter_paths and not args.create_new_adapter:
        _check_adapter_kind(adapter_paths[-1], args.finetuning_type)
        logger.info("continuing to train adapter %s", adapter_paths[-1])
        return load_adapters(model, adapter_paths, is_trainable=True), True
    if adapter_paths:
        model = load_adapters(model, adapter_paths, is_trainable=False).merge_and_unload()
    return model, False


def _check_adapter_kind(path: str, method: str) -> None:
    """Training continues the adapter it is given: it must be of the method asked for."""
    config_file = Path(path) / "adapter_config.json"
    if not config_file.is_file():
        return  # load_adapters says what is wrong
    kind = str(json.loads(config_file.read_text(encoding="utf-8")).get("peft_type", "")).lower()
    if kind and kind != method:
        raise UserError(
            f"the adapter to continue is a {kind.upper()} adapter; finetuning_type is {method}",
            where=f"adapter_name_or_path ({path})",
            fix=f"set finetuning_type: {kind}, or create_new_adapter: true (merge it, train a new {method} adapter)",
        )


def _targets(model, value: str, key: str, mm: MultimodalArguments | None = None) -> list[str]:
    """The short module names `value` (lora_target / oft_target) names; all: every linear layer but the head. On a
    vision-language model: the full names of those layers outside its frozen parts (model/vision_parts.py)."""
    vision = mm is not None and is_vision_config(model.config)
    available = lora_short_names(model, mm) if vision else linear_module_names(model)
    if vision and not available:
        raise UserError(
            f"the freeze switches leave {key} no layer to adapt (language model and vision tower frozen)",
            where="freeze_language_model",
            fix="set freeze_language_model: false or freeze_vision_tower: false",
        )
    targets = split_names(value)
    if targets == ["all"]:
        targets = available
    unknown = [t for t in targets if t not in available]
    if unknown:
        raise UserError(
            f"{key} names modules the model does not have: {', '.join(unknown)}",
            where=key,
            fix=f"use all, or some of: {', '.join(available)}",
        )
    return lora_targets(model, mm, targets) if vision else targets


def _modules_to_save(model, args: FinetuningArguments, mm: MultimodalArguments | None) -> list[str] | None:
    """Whole modules trained and saved beside the adapter: additional_target, else the resized vocabulary's; plus a
    VLM's unfrozen projector."""
    names = split_names(args.additional_target) or vocab_module_names(model)
    if mm is not None and is_vision_config(model.config):
        names = [*names, *projector_modules(model, mm)]
    return names or None


def _task_type(model) -> str:
    # a reward model (stage rm) is a sequence classifier: peft then trains and saves its score head too
    return "SEQ_CLS" if type(model).__name__.endswith("ForSequenceClassification") else "CAUSAL_LM"


def _llama_pro_layers(model, args: FinetuningArguments) -> dict:
    """LLaMA Pro with an adapter: only the expanded blocks get it (LLaMA-Factory's find_expanded_modules)."""
    if not args.use_llama_pro:
        return {}
    ids = expanded_layer_ids(model.config.num_hidden_layers, args.freeze_trainable_layers)
    logger.info("LLaMA Pro: adapters on layers %s", list(ids))
    return {"layers_to_transform": list(ids)}


def _lora_init(args: FinetuningArguments):
    if not args.pissa_init:
        return True
    return "pissa" if args.pissa_iter == -1 else f"pissa_niter_{args.pissa_iter}"  # fast SVD with n iterations


def prepare_trainable(
    model, args: FinetuningArguments, adapter_paths: list[str], mm: MultimodalArguments | None = None
):
    """`mm`: a vision-language model's freeze switches (freeze_vision_tower, ...), which full and freeze tuning
    apply after the language model's setting and LoRA reads for its targets."""
    if args.finetuning_type == "full":
        setup_full(model)
    elif args.finetuning_type == "freeze":
        setup_freeze(model, args)
    elif args.finetuning_type == "oft":
        model = setup_oft(model, args, adapter_paths, mm)
    else:
        model = setup_lora(model, args, adapter_paths, mm)
    if args.finetuning_type in ("full", "freeze") and mm is not None and is_vision_config(model.config):
        freeze_parts(model, mm)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info("trainable params: %s / %s (%.2f%%)", f"{trainable:,}", f"{total:,}", 100 * trainable / total)
    return model
