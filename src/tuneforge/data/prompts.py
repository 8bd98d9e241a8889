"""Prompts for on-policy stages (PPO): the conversation up to the last user turn, encoded for generation."""

from __future__ import annotations

import dataclasses

from tuneforge.data.conversation import PROMPT_ROLES, Conversation


def prompt_conversation(conv: Conversation) -> Conversation:
    """Drop a final response (and a ranking pair's answers): what is left ends with a prompt turn."""
    messages = list(conv.messages)
    while messages and messages[-1].role not in PROMPT_ROLES:
        messages.pop()
    return dataclasses.replace(conv, messages=messages, rejected=None, kto_tag=None)


def encode_prompt_example(
    conv: Conversation, template, tokenizer, cutoff_len: int, default_system: str | None = None
) -> dict:
    """{"input_ids"} of the prompt, ending where the assistant's reply begins; a long prompt keeps its end."""
    ids = template.encode_prompt(tokenizer, prompt_conversation(conv), default_system)
    return {"input_ids": ids[-cutoff_len:]}
