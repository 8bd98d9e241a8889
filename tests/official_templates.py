"""Rendering a conversation two ways: the model's official Jinja chat_template (kept in tests/fixtures/chat_templates,
described by its families.yaml) and our named template of the same family.

Both sides use one tokenizer: the tiny byte-level BPE with the family's special tokens added and BOS / EOS set to the
family's, so `{{ bos_token }}` in the Jinja and our BOS id agree and decode(encode(text)) == text. Templates that
print today's date (`strftime_now`) see a fixed one. Used by tests/unit/test_official_templates.py and
scripts/compare_official_templates.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from tuneforge.data.conversation import ASSISTANT, FUNCTION, OBSERVATION, USER, Conversation, Message

FIXTURES = Path(__file__).parent / "fixtures" / "chat_templates"
FIXED_DATE = datetime(2026, 1, 15)

SYSTEM = "You are a careful assistant."
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "The city name."}},
                "required": ["city"],
            },
        },
    }
]
CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}
CALL_ID = "call00001"  # Mistral's templates want 9 characters
RESULT = '{"temperature": 22}'
QUESTION = (USER, "What is 2 + 2?")
HISTORY = [QUESTION, (ASSISTANT, "2 + 2 = 4."), (USER, "And 3 + 3?")]

# case -> (system, tools, turns); a turn is (role, content); the last turn is the prompt to answer
CASES: dict[str, tuple[str, list | None, list[tuple[str, str]]]] = {
    "single": ("", None, [QUESTION]),
    "multi": ("", None, HISTORY),
    "system": (SYSTEM, None, HISTORY),
    "tools": (SYSTEM, TOOLS, [(USER, "What is the weather in Paris?")]),
    "tool_calls": (  # a tool call and its result in the history
        SYSTEM,
        TOOLS,
        [(USER, "What is the weather in Paris?"), (FUNCTION, json.dumps(CALL)), (OBSERVATION, RESULT)],
    ),
    "no_think": (SYSTEM, None, HISTORY),  # with thinking switched off: enable_thinking=False on both sides
}
THINKING_OFF = {"no_think"}


@dataclass(frozen=True)
class Family:
    """One official template (a fixture) and our name for its family; see families.yaml."""

    fixture: str  # named after the hub id
    hub: str
    template: str
    source: str
    tokens: tuple[str, ...] = ()
    bos: str | None = None
    eos: str | None = None
    arguments_as_text: bool = False  # the official template wants tool-call arguments as a JSON string
    differs: dict[str, str] = field(default_factory=dict)  # case -> why it is not compared


def load_families() -> list[Family]:
    data = yaml.safe_load((FIXTURES / "families.yaml").read_text(encoding="utf-8"))
    groups, reasons = data["tokens"], data["reasons"]

    def tokens(spec) -> tuple[str, ...]:
        items = [spec] if isinstance(spec, str) else spec
        out: list[str] = []
        for item in items:
            name = item[1:] if item.startswith("@") else item
            out += groups.get(name, [item])
        return tuple(out)

    return [
        Family(
            **{k: v for k, v in row.items() if k not in ("tokens", "differs")},
            tokens=tokens(row.get("tokens", [])),
            differs={case: reasons.get(why, why) for case, why in (row.get("differs") or {}).items()},
        )
        for row in data["families"]
    ]


def family_tokenizer(base_dir: Path, family: Family):
    """The tiny tokenizer (saved in base_dir) dressed as the family's: its special tokens, BOS / EOS, and its
    official chat_template."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base_dir)
    extra = [t for t in family.tokens if t not in (family.bos, family.eos)]
    tok.add_special_tokens({"extra_special_tokens": extra}, replace_extra_special_tokens=False)
    tok.add_special_tokens({k: v for k, v in (("bos_token", family.bos), ("eos_token", family.eos)) if v})
    if family.bos is None:
        tok.bos_token = None
    tok.chat_template = (FIXTURES / family.fixture).read_text(encoding="utf-8")
    return tok


def conversation(case: str) -> Conversation:
    system, tools, turns = CASES[case]
    return Conversation(
        messages=[Message(role, content) for role, content in turns],
        system=system,
        tools=json.dumps(tools) if tools else "",
    )


def hf_messages(case: str, arguments_as_text: bool = False) -> tuple[list[dict], list | None]:
    """The same conversation as OpenAI / HF chat messages (+ tools)."""
    system, tools, turns = CASES[case]
    out = [{"role": "system", "content": system}] if system else []
    for role, content in turns:
        if role == FUNCTION:
            call = json.loads(content)
            args = json.dumps(call["arguments"]) if arguments_as_text else call["arguments"]
            function = {"name": call["name"], "arguments": args}
            out.append(
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"id": CALL_ID, "type": "function", "function": function}],
                }
            )
        elif role == OBSERVATION:
            out.append({"role": "tool", "tool_call_id": CALL_ID, "content": content})
        else:
            out.append({"role": role, "content": content})
    return out, tools


class _FixedDatetime(datetime):
    @classmethod
    def now(cls, tz=None):
        return FIXED_DATE


def official_prompt(tok, family: Family, case: str) -> str:
    """apply_chat_template(..., add_generation_prompt=True) on the official Jinja; its `strftime_now` (a global of
    transformers' Jinja environment, which a render variable cannot replace) sees FIXED_DATE."""
    from unittest import mock

    from transformers.utils import chat_template_utils

    messages, tools = hf_messages(case, family.arguments_as_text)
    kwargs = {"enable_thinking": False} if case in THINKING_OFF else {}
    with mock.patch.object(chat_template_utils, "datetime", _FixedDatetime):
        return tok.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False, **kwargs)


def our_template(tok, family: Family, case: str):
    """Our template of the family's name (thinking off for the no_think case), with the tokenizer fitted to it (as
    training and inference do) before either side renders."""
    from tuneforge.data.template import get_template

    template = get_template(family.template, tok, enable_thinking=case not in THINKING_OFF)
    template.fix_tokenizer(tok)
    return template


def our_prompt(tok, template, case: str) -> str:
    """Our named template's prompt for generation (Template.encode_prompt), decoded."""
    ids = template.encode_prompt(tok, conversation(case))
    return tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def first_difference(ours: str, official: str, context: int = 40) -> str:
    i = next((k for k, (x, y) in enumerate(zip(ours, official, strict=False)) if x != y), min(len(ours), len(official)))
    start = max(0, i - 10)
    return f"at char {i}: ours {ours[start : i + context]!r} / official {official[start : i + context]!r}"
