"""Supervised fine-tuning examples: a Conversation → input_ids and labels, prompts masked (LLaMA-Factory's rules)."""

from __future__ import annotations

from tuneforge.data.conversation import Conversation
from tuneforge.errors import UserError

IGNORE_INDEX = -100


def infer_seqlen(source_len: int, target_len: int, cutoff_len: int) -> tuple[int, int]:
    """Lengths (source, target) after cutting a pair to `cutoff_len`; part of the response is always kept
    (a short side is kept whole, otherwise both shrink in proportion)."""
    if target_len * 2 < cutoff_len:  # short response: cut the prompt
        max_target_len = cutoff_len
    elif source_len * 2 < cutoff_len:  # short prompt: cut the response
        max_target_len = cutoff_len - source_len
    else:  # cut both in proportion
        max_target_len = int(cutoff_len * (target_len / (source_len + target_len)))
    new_target_len = min(max_target_len, target_len)
    new_source_len = min(max(cutoff_len - new_target_len, 0), source_len)
    return new_source_len, new_target_len


def encode_sft_example(
    conv: Conversation,
    template,
    tokenizer,
    cutoff_len: int,
    train_on_prompt: bool = False,
    mask_history: bool = False,
    default_system: str | None = None,
) -> dict:
    """{"input_ids", "labels", "attention_mask"} for one conversation, at most `cutoff_len` tokens.

    Turn pairs are cut in order to the remaining budget (last turn first with `mask_history`, so it survives).
    Labels are IGNORE_INDEX on prompts (unless `train_on_prompt`) and equal the ids on trained responses, whose
    end-of-turn / EOS token is part of the response. With `mask_history` only the last response is trained.
    With an efficient_eos template the EOS is not in the text between turns: the first prompt token after a
    trained response gets the EOS as its label, and one real EOS ends the sequence (both trained).
    """
    if template.efficient_eos and train_on_prompt:
        raise UserError(
            f"template '{template.name}' (efficient_eos) does not support train_on_prompt",
            where="train_on_prompt",
            fix="set train_on_prompt: false or choose another template",
        )
    # LF: with mask_history a reasoning template keeps only the last reply's thinking (unless preserve_thinking)
    discard = mask_history and not template.preserve_thinking
    pairs = template.encode_multiturn(tokenizer, conv, default_system, discard_history_thoughts=discard)
    if not pairs:
        raise UserError("the conversation has no response to train on", where=conv.source or None)
    last = len(pairs) - 1
    order = range(last, -1, -1) if mask_history else range(last + 1)
    eos = tokenizer.eos_token_id
    total = 1 if template.efficient_eos else 0  # room for the final EOS
    kept: dict[int, tuple[list[int], list[int], list[int], list[int]]] = {}
    for k in order:
        if total >= cutoff_len:
            break
        source, target = pairs[k]
        source_len, target_len = infer_seqlen(len(source), len(target), cutoff_len - total)
        source, target = source[:source_len], target[:target_len]
        total += source_len + target_len
        if train_on_prompt:
            source_labels = list(source)
        else:
            source_labels = [IGNORE_INDEX] * source_len
            if template.efficient_eos and k > 0 and not mask_history and source_len:
                source_labels[0] = eos  # the EOS after the previous (trained) response
        trained = not mask_history or k == last
        kept[k] = (source, target, source_labels, list(target) if trained else [IGNORE_INDEX] * target_len)

    input_ids: list[int] = []
    labels: list[int] = []
    for k in sorted(kept):
        source, target, source_labels, target_labels = kept[k]
        input_ids += source + target
        labels += source_labels + target_labels
    if template.efficient_eos:
        input_ids.append(eos)
        labels.append(eos)
    return {"input_ids": input_ids, "labels": labels, "attention_mask": [1] * len(input_ids)}
