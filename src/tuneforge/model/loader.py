"""Load the tokenizer and model from a local folder or a hub id, with the user's dtype, attention and RoPE."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.model import boosters
from tuneforge.model.config_patches import configure_kv_cache, configure_moe, device_map_kwargs
from tuneforge.model.hubs import resolve_model_source
from tuneforge.model.new_tokens import add_new_tokens, set_model_max_length
from tuneforge.model.quantize import check_quantization, quantization_config, quantize_hqq
from tuneforge.model.upcast import apply_upcasts
from tuneforge.model.vision_parts import is_vision_config, unquantized_parts
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.model_args import ModelArguments

logger = get_logger(__name__)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def _hub_kwargs(args: ModelArguments) -> dict:
    return {
        "cache_dir": args.cache_dir,
        "revision": args.model_revision,
        "token": args.hf_hub_token,
        "trust_remote_code": args.trust_remote_code,
    }


def _is_unreadable(exc: Exception) -> bool:
    return isinstance(exc, (OSError, ValueError))


@contextmanager
def _model_folder_errors(
    action: str, args: ModelArguments, fix: str, broken: Callable[[Exception], bool] = _is_unreadable
) -> Iterator[None]:
    """The errors a broken model folder causes (`broken(exc)`) become one UserError: "cannot <action>: <first
    line>" at model_name_or_path; any other error keeps its traceback."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - only the errors `broken` names become a UserError
        if not broken(exc):
            raise
        raise UserError(
            f"cannot {action}: {str(exc).splitlines()[0]}",
            where=f"model_name_or_path ({args.model_name_or_path})",
            fix=fix,
        ) from exc


def check_model_path(path: str | None, field: str = "model_name_or_path") -> None:
    """A local folder must exist and hold a model; anything else must look like a hub id."""
    if not path:
        raise UserError("no model given", where=field, fix="set model_name_or_path to a model folder or hub id")
    p = Path(path).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file() and not (p / "adapter_config.json").is_file():
            raise UserError(
                "folder has no config.json: not a Hugging Face model folder",
                where=f"{field} ({path})",
                fix="point it at the folder that holds config.json and the weights",
            )
        return
    looks_local = path.startswith((".", "/", "~")) or os.sep * 2 in path or path.count("/") != 1
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
    if looks_local or offline:
        raise UserError(
            f"model path '{path}' does not exist" + (" (and the hub is offline)" if offline else ""),
            where=field,
            fix="check the folder path (relative paths start from the current directory)",
        )


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt")


def load_tokenizer(args: ModelArguments, cutoff_len: int | None = None):
    """`cutoff_len` (training): the tokenizer's model_max_length grows to it unless model_max_length is set."""
    from transformers import AutoTokenizer  # late, as in every loader here: transformers loads torch (seconds)

    resolve_model_source(args)  # USE_MODELSCOPE_HUB=1: a ModelScope id becomes its local snapshot folder
    check_model_path(args.model_name_or_path)
    folder = Path(args.model_name_or_path).expanduser()
    if folder.is_dir() and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(  # transformers 5 would otherwise build an empty tokenizer from config.json alone
            "folder has no tokenizer files",
            where=f"model_name_or_path ({args.model_name_or_path})",
            fix=f"copy the tokenizer files ({', '.join(TOKENIZER_FILES[:2])}) from the model you fine-tuned",
        )
    fix = "make sure the folder holds tokenizer files (tokenizer.json or tokenizer_config.json)"
    with _model_folder_errors("load the tokenizer", args, fix):
        tokenizer = AutoTokenizer.from_pretrained(
            args.model_name_or_path,
            use_fast=args.use_fast_tokenizer,
            split_special_tokens=args.split_special_tokens,
            padding_side="right",
            **_hub_kwargs(args),
        )
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    add_new_tokens(tokenizer, args)  # add_tokens / add_special_tokens / new_special_tokens_config
    set_model_max_length(tokenizer, args, cutoff_len)
    return tokenizer


def load_config(args: ModelArguments, cutoff_len: int | None = None):
    from transformers import AutoConfig

    resolve_model_source(args)  # USE_MODELSCOPE_HUB=1 (load_model comes through here too)
    fix = "check config.json; set trust_remote_code: true only for a model whose code you trust"
    with _model_folder_errors("read the model config", args, fix):
        config = AutoConfig.from_pretrained(args.model_name_or_path, **_hub_kwargs(args))
    if args.rope_scaling:
        _apply_rope_scaling(config, args.rope_scaling, cutoff_len)
    return config


def _apply_rope_scaling(config, kind: str, cutoff_len: int | None) -> None:
    current = getattr(config, "max_position_embeddings", None)
    if not current:
        raise UserError("this model has no max_position_embeddings; RoPE scaling does not apply", where="rope_scaling")
    factor = float(math.ceil(cutoff_len / current)) if cutoff_len and cutoff_len > current else 2.0
    params = dict(getattr(config, "rope_parameters", None) or {})
    params.update({"rope_type": kind, "factor": factor})
    if kind in ("yarn", "llama3"):
        params["original_max_position_embeddings"] = current
    if kind == "llama3":
        params.setdefault("low_freq_factor", 1.0)
        params.setdefault("high_freq_factor", 4.0)
    config.rope_parameters = params
    # dynamic NTK scales only past max_position_embeddings (the trained context): that one must stay
    if kind in ("yarn", "llama3", "linear"):
        config.max_position_embeddings = int(current * factor)
    logger.info("RoPE scaling %s with factor %.1f (context %d → %d)", kind, factor, current, int(current * factor))


def _is_bad_weights(exc: Exception) -> bool:
    """Missing, truncated, corrupt or wrongly shaped weight files (safetensors' own error, or transformers'
    size-mismatch report) — not an out-of-memory or a bug, which keep their traceback."""
    from safetensors import SafetensorError  # late, with the other weight-loading libraries

    if isinstance(exc, (OSError, ValueError, KeyError, SafetensorError)):
        return True
    text = str(exc)
    return type(exc) is RuntimeError and ("ignore_mismatched_sizes" in text or "size mismatch" in text)


def load_model(args: ModelArguments, dtype, cutoff_len: int | None = None, for_training: bool = True, head: str = "lm"):
    """The base model, unquantized or quantized (QLoRA), with no adapter yet. `head="score"` loads it with a
    one-output sequence-classification head (a reward model, stage rm) instead of the LM head."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoModelForSequenceClassification

    check_quantization(args)
    boosters.check_booster(args)
    config = load_config(args, cutoff_len)
    if head == "score":
        auto = AutoModelForSequenceClassification
    else:  # a vision-language model loads whole (vision tower, projector, language model) as its own class
        auto = AutoModelForImageTextToText if is_vision_config(config) else AutoModelForCausalLM
    if head == "score":
        config.num_labels = 1
    configure_moe(config, args, for_training)  # moe_aux_loss_coef
    kwargs = {
        "config": config,
        "dtype": dtype,
        "attn_implementation": boosters.attention_implementation(args),
        "low_cpu_mem_usage": args.low_cpu_mem_usage,
        **_hub_kwargs(args),
        **device_map_kwargs(args, for_training),  # quantization_device_map: auto + offload_folder
    }
    keep = unquantized_parts(config)  # a VLM's vision tower and projector stay in full precision
    qconfig = quantization_config(args, dtype, keep) if args.quantization_bit is not None else None
    if qconfig is not None:  # None: unquantized, or hqq (it quantizes after loading)
        kwargs["quantization_config"] = qconfig
    fix = "check that the folder holds complete weights (*.safetensors) for its config.json"
    with _model_folder_errors("load the model", args, fix, broken=_is_bad_weights):
        if args.train_from_scratch:
            model = auto.from_config(config, dtype=dtype, trust_remote_code=args.trust_remote_code)
        else:
            model = auto.from_pretrained(args.model_name_or_path, **kwargs)
    if args.quantization_bit is not None and args.quantization_method == "hqq":
        model = quantize_hqq(model, args.quantization_bit, dtype, keep)
    configure_kv_cache(model, args, for_training)  # use_kv_cache (never in training)
    if for_training:
        apply_upcasts(model, args)  # upcast_layernorm / upcast_lmhead_output
        model = boosters.apply_kernels(model, args)
    return model
