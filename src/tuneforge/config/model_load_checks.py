"""Config-load rules for the model-loading keys: new tokens and their descriptions, the quantized device map."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.utils.devices import has_cuda

if TYPE_CHECKING:
    from tuneforge.config.model_args import ModelArguments
    from tuneforge.config.run_config import RunConfig


def read_token_descriptions(path: str, where: str = "new_special_tokens_config") -> dict[str, str]:
    """The YAML file of new_special_tokens_config: {token: description} (LF's format), in file order."""
    import yaml  # light, but only a config with new tokens needs it

    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"file '{path}' does not exist", where=where, fix="point it at a YAML file: <token>: <text>")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"not valid YAML: {str(exc).splitlines()[0]}", where=where) from exc
    if not isinstance(data, dict) or not data or not all(isinstance(k, str) and k for k in data):
        raise UserError(
            "the file must map each new special token to its description",
            where=where,
            fix='write lines like `"<think>": "the start of the reasoning"`',
        )
    return {token: "" if text is None else str(text) for token, text in data.items()}


def new_tokens(args: ModelArguments) -> tuple[list[str], list[str], dict[str, str] | None]:
    """(plain tokens, special tokens, descriptions or None). new_special_tokens_config wins over add_special_tokens,
    as in LF."""
    plain = [t.strip() for t in (args.add_tokens or "").split(",") if t.strip()]
    if args.new_special_tokens_config:
        descriptions = read_token_descriptions(args.new_special_tokens_config)
        return plain, list(descriptions), descriptions
    special = [t.strip() for t in (args.add_special_tokens or "").split(",") if t.strip()]
    return plain, special, None


def check_model_loading(cfg: RunConfig) -> None:
    model = cfg.model
    if model.new_special_tokens_config:
        read_token_descriptions(model.new_special_tokens_config, cfg.where("new_special_tokens_config"))
        if model.add_special_tokens:
            raise UserError(
                "set either new_special_tokens_config or add_special_tokens (LF would ignore add_special_tokens)",
                where=cfg.where("add_special_tokens"),
                fix="list every special token in the new_special_tokens_config file",
            )
    if model.init_special_tokens != "noise_init" and not model.new_special_tokens_config:
        raise UserError(  # LF falls back to noise_init with a warning: a silently changed setting
            f"init_special_tokens: {model.init_special_tokens} initialises from descriptions, and none are given",
            where=cfg.where("init_special_tokens"),
            fix="set new_special_tokens_config to a YAML file of <token>: <description>, or use noise_init",
        )
    if model.quantization_device_map is not None:
        _check_quantization_device_map(cfg)
    elif "offload_folder" in cfg.given and model.offload_folder != "offload":
        raise UserError(
            "offload_folder is used only when a model is spread with a device map (quantization_device_map: auto)",
            where=cfg.where("offload_folder"),
            fix="remove offload_folder, or set quantization_device_map: auto (a CUDA GPU)",
        )


def _check_quantization_device_map(cfg: RunConfig) -> None:

    where = cfg.where("quantization_device_map")
    if not has_cuda():
        raise UserError(
            "quantization_device_map: auto spreads a bitsandbytes 4-bit model over CUDA GPUs; this machine has none",
            where=where,
            fix="remove it (the quantized model then loads on this machine's device)",
        )
    if cfg.model.quantization_bit != 4 or cfg.model.quantization_method != "bnb":
        raise UserError(
            "quantization_device_map: auto needs a bitsandbytes 4-bit model (as in LLaMA-Factory)",
            where=where,
            fix="set quantization_bit: 4 and quantization_method: bnb, or remove quantization_device_map",
        )
