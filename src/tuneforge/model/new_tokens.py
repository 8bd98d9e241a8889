"""New tokens (add_tokens, add_special_tokens, new_special_tokens_config) and the vocabulary resize they need,
as LLaMA-Factory's patch_tokenizer + model_utils/embedding.py do it: the embeddings (and an untied LM head) grow to
len(tokenizer) rounded up to 64, the new rows start at the mean of the old rows plus N(0, 1/sqrt(hidden)) noise
(noise_init), or at the mean of the rows of the description's tokens (desc_init, + that noise: desc_init_w_noise).
With LoRA the resized modules are trained and saved in the adapter (peft modules_to_save)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tuneforge.config.model_load_checks import new_tokens
from tuneforge.errors import UserError
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.model_args import ModelArguments

logger = get_logger(__name__)
PAD_TO_MULTIPLE = 64  # LF's pad_to_multiple_of: tensor-core friendly shapes
VOCAB_GREW = "tuneforge_vocab_resized"  # set on a model whose vocabulary grew: LoRA then trains + saves its embeddings


def add_new_tokens(tokenizer, args: ModelArguments) -> int:
    """Add the configured tokens to the tokenizer; returns how many were new."""
    plain, special, _ = new_tokens(args)
    added = tokenizer.add_tokens(plain, special_tokens=False) if plain else 0
    added += tokenizer.add_tokens(special, special_tokens=True) if special else 0
    if plain or special:
        logger.info("added %d new tokens to the tokenizer (%s)", added, ", ".join(plain + special))
    return added


def wants_resize(args: ModelArguments) -> bool:
    """LF turns resize_vocab on when it adds tokens."""
    plain, special, _ = new_tokens(args)
    return bool(args.resize_vocab or plain or special)


def resize_embeddings(model, tokenizer, args: ModelArguments) -> None:
    """Grow the embeddings to the tokenizer and initialise the new rows (resize_vocab, or new tokens asked for).
    Otherwise only a tokenizer larger than the embeddings (a template's added token) grows them, as before."""
    import torch  # torch: a process that loads a model has it already

    old = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) <= old:
        if wants_resize(args):
            setattr(model, VOCAB_GREW, True)  # LF: resize_vocab makes LoRA train the embeddings even so
        return
    if not wants_resize(args):
        model.resize_token_embeddings(len(tokenizer))
        return
    if getattr(model, "hf_quantizer", None) is not None or getattr(model, "hqq_quantized", False):
        raise UserError(
            "the embeddings of a quantized model cannot grow for new tokens",
            where="add_tokens / add_special_tokens / resize_vocab",
            fix="remove quantization_bit, or use tokens the vocabulary already has",
        )
    output = model.get_output_embeddings()
    if output is not None and not isinstance(output, torch.nn.Linear):
        raise UserError("this model's output layer cannot be resized", where="add_tokens / add_special_tokens")
    # mean_resizing off: its covariance-based init costs time on a real vocabulary, and we overwrite the rows
    model.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=PAD_TO_MULTIPLE, mean_resizing=False)
    _, _, descriptions = new_tokens(args)
    matrices = [model.get_input_embeddings().weight]
    output = model.get_output_embeddings()  # resizing replaced the module
    if output is not None and output.weight is not matrices[0]:
        matrices.append(output.weight)
    with torch.no_grad():
        for weight in matrices:
            init_new_rows(weight, old, tokenizer, args.init_special_tokens, descriptions)
    model.config.vocab_size = matrices[0].shape[0]
    setattr(model, VOCAB_GREW, True)
    logger.info("resized the vocabulary %d -> %d (%s)", old, matrices[0].shape[0], args.init_special_tokens)


def init_new_rows(weight, old: int, tokenizer, method: str, descriptions: dict[str, str] | None) -> None:
    """Rows old.. of `weight` (every new row, the padding included) get LF's noise_init; with desc_init the row of
    each described token is then the mean of the rows of its description's old tokens (+ noise: desc_init_w_noise).
    Each matrix uses its own rows (LF reads the input embeddings for the LM head too)."""
    import torch

    std = 1.0 / math.sqrt(weight.shape[1])
    weight[old:] = weight[:old].mean(dim=0, keepdim=True) + torch.randn_like(weight[old:]) * std
    if method == "noise_init" or not descriptions:
        return
    for token, text in descriptions.items():
        row = tokenizer.convert_tokens_to_ids(token)
        ids = [i for i in tokenizer(text, add_special_tokens=False)["input_ids"] if i < old]
        base = weight[ids].mean(dim=0) if ids else weight[:old].mean(dim=0)  # LF: no old token, the mean of all
        if not ids:
            logger.warning("the description of %s has no existing token: it starts at the mean embedding", token)
        noise = torch.randn_like(base) * std if method == "desc_init_w_noise" else 0.0
        weight[row] = base + noise


def vocab_module_names(model) -> list[str]:
    """Short names of the embedding and LM head when the vocabulary grew (LF's additional_target for LoRA)."""
    if not getattr(model, VOCAB_GREW, False):
        return []
    wanted = [m for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None]
    return sorted({name.split(".")[-1] for name, module in model.named_modules() if any(module is m for m in wanted)})


def keeps_tied_vocab(model) -> bool:
    """A grown vocabulary of a model that ties its embeddings and LM head: peft must keep the trained copies tied."""
    return bool(vocab_module_names(model)) and bool(getattr(model.config, "tie_word_embeddings", False))


def set_model_max_length(tokenizer, args: ModelArguments, cutoff_len: int | None) -> None:
    """model_max_length when set; in training LF's derived value, cutoff_len, which only ever raises it."""
    if args.model_max_length is not None:
        tokenizer.model_max_length = args.model_max_length
    elif cutoff_len is not None and tokenizer.model_max_length < cutoff_len:
        tokenizer.model_max_length = cutoff_len
