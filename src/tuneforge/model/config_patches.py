"""Changes to a model's config before its weights load, as LLaMA-Factory's patch_config makes them:
moe_aux_loss_coef (model_utils/moe.py), use_kv_cache (model_utils/kv_cache.py), and the device map of
quantization_device_map: auto with its offload_folder."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.model_args import ModelArguments

logger = get_logger(__name__)

# model_type -> the config attribute that weighs the router's load-balancing loss (LF's configure_moe table)
MOE_COEF_ATTRIBUTE = {
    "ernie4_5_moe": "router_aux_loss_coef",
    "granitemoe": "router_aux_loss_coef",
    "jamba": "router_aux_loss_coef",
    "llama4": "router_aux_loss_coef",
    "mixtral": "router_aux_loss_coef",
    "olmoe": "router_aux_loss_coef",
    "phimoe": "router_aux_loss_coef",
    "qwen2_moe": "router_aux_loss_coef",
    "qwen3_moe": "router_aux_loss_coef",
    "jetmoe": "aux_loss_coef",
    "deepseek": "aux_loss_alpha",  # remote code; it adds its aux loss without output_router_logits
}


def configure_moe(config, args: ModelArguments, for_training: bool) -> None:
    """Training: the model returns its router logits and adds coef x the load-balancing loss to the loss."""
    if not for_training or not args.moe_aux_loss_coef:
        return
    target = config
    text = getattr(config, "text_config", None)
    if config.model_type not in MOE_COEF_ATTRIBUTE and getattr(text, "model_type", None) in MOE_COEF_ATTRIBUTE:
        target = text  # a multimodal model around a MoE language model (LF: InternVL 3.5's qwen3_moe)
    attribute = MOE_COEF_ATTRIBUTE.get(target.model_type)
    if attribute is None:
        raise UserError(
            f"this model ({config.model_type}) has no router load-balancing loss that moe_aux_loss_coef can weigh",
            where="moe_aux_loss_coef",
            fix=f"remove it; it applies to {', '.join(sorted(MOE_COEF_ATTRIBUTE))}",
        )
    if target.model_type != "deepseek":
        target.output_router_logits = True
    setattr(target, attribute, args.moe_aux_loss_coef)
    logger.info("moe: router aux loss weighted %g (%s)", args.moe_aux_loss_coef, attribute)


def configure_kv_cache(model, args: ModelArguments, for_training: bool) -> None:
    """Training never uses the cache; generation (chat, API, predict) uses it unless use_kv_cache: false."""
    use = bool(args.use_kv_cache) and not for_training
    for config in (model.config, getattr(model.config, "text_config", None)):
        if config is not None:
            config.use_cache = use
    if not for_training and getattr(model, "generation_config", None) is not None:
        model.generation_config.use_cache = use  # what generate() reads (training's own generations keep theirs)


def device_map_kwargs(args: ModelArguments, for_training: bool) -> dict:
    """from_pretrained's device_map / offload_folder for quantization_device_map: auto (inference on CUDA GPUs;
    config load refuses it elsewhere): accelerate spreads the layers over the GPUs, then CPU memory, then
    offload_folder on disk."""
    if args.quantization_device_map != "auto":
        return {}
    if for_training:
        raise UserError(
            "quantization_device_map: auto is for inference; training keeps one copy of the model per device",
            where="quantization_device_map",
            fix="remove it for training (chat, API and predict can use it)",
        )
    return {"device_map": "auto", "offload_folder": args.offload_folder}
