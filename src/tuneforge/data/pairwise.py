"""Pairwise (chosen / rejected) and unpaired (KTO) examples, encoded with OUR template so prompts match SFT and chat.

The prompt is everything up to the last response (LF's encode_oneturn): earlier turns (with their responses) and
the last user turn, ending where the assistant's reply begins. Each completion ends with the template's end-of-turn
token, as in SFT.
Too long: the prompt keeps its start and the completions are cut to a common length (LLaMA-Factory's rule).
"""

from __future__ import annotations

import dataclasses

from tuneforge.data.conversation import Conversation
from tuneforge.data.sft import infer_seqlen


def _prompt_and_response(conv: Conversation, template, tokenizer, default_system: str | None):
    """LF's encode_oneturn: a reasoning template drops the thinking of earlier replies (unless preserve_thinking)
    and puts an empty thought before a reply without one (in the prompt unless enable_thinking)."""
    return template.encode_oneturn(tokenizer, conv, default_system)


def encode_pairwise_example(
    conv: Conversation, template, tokenizer, cutoff_len: int, default_system: str | None = None
) -> dict:
    """{"prompt_ids", "chosen_ids", "rejected_ids"}: prompt + each completion fits in `cutoff_len` tokens."""
    if conv.rejected is None:
        raise ValueError("a pairwise example needs a rejected response")
    prompt, chosen = _prompt_and_response(conv, template, tokenizer, default_system)
    other = dataclasses.replace(conv, messages=conv.messages[:-1] + [conv.rejected])
    _, rejected = _prompt_and_response(other, template, tokenizer, default_system)
    if template.efficient_eos:
        chosen, rejected = chosen + [tokenizer.eos_token_id], rejected + [tokenizer.eos_token_id]
    source_len, target_len = infer_seqlen(len(prompt), max(len(chosen), len(rejected)), cutoff_len)
    return {"prompt_ids": prompt[:source_len], "chosen_ids": chosen[:target_len], "rejected_ids": rejected[:target_len]}


def encode_kto_example(
    conv: Conversation, template, tokenizer, cutoff_len: int, default_system: str | None = None
) -> dict:
    """{"prompt_ids", "completion_ids", "label"}: label True for a desirable response (kto_tag)."""
    if conv.kto_tag is None:
        raise ValueError("a KTO example needs a kto_tag")
    prompt, completion = _prompt_and_response(conv, template, tokenizer, default_system)
    if template.efficient_eos:
        completion = completion + [tokenizer.eos_token_id]
    source_len, target_len = infer_seqlen(len(prompt), len(completion), cutoff_len)
    return {"prompt_ids": prompt[:source_len], "completion_ids": completion[:target_len], "label": bool(conv.kto_tag)}
