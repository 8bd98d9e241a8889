"""The conversations LLaMA-Factory's templates are compared on (scripts/gen_lf_template_fixture.py writes LF's
encodings to tests/fixtures/lf_templates.json; tests/unit/test_lf_templates.py encodes them with ours).

Each case is LF's messages / system / tools, built from a template's thought and tool-call words (so thinking data
and calls with thoughts read as that family writes them). A fake tokenizer keeps every element visible."""

from __future__ import annotations

import json

FIXED_DATE = "26 Jul 2024"  # the llama3 tool prompt's "Today Date"


class FakeTokenizer:
    """encode(text) → [text]; one marker per special id, so element boundaries show in the ids."""

    bos_token, eos_token = "<s>", "</s>"
    bos_token_id, eos_token_id = "<BOS>", "<EOS>"

    def encode(self, text: str, add_special_tokens: bool = False) -> list[str]:
        return [text]

    def convert_tokens_to_ids(self, token: str) -> str:
        return f"<id:{token}>"


TOOLS = json.dumps(
    [
        {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name"},
                    "unit": {"type": "string", "enum": ["c", "f"], "description": "Unit"},
                },
                "required": ["city"],
            },
        },
        {
            "type": "function",
            "function": {
                "name": "get_time",
                "description": "Local time",
                "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": []},
            },
        },
    ]
)
CALL = {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}
CALL2 = {"name": "get_time", "arguments": {"tz": "Europe/Paris"}}


def _msg(role: str, content: str) -> dict:
    return {"role": role, "content": content}


def _single(tw, tc):
    return {"messages": [_msg("user", "Hi there"), _msg("assistant", "Hello!")]}


def _system(tw, tc):
    return {**_single(tw, tc), "system": "Be brief."}


def _multi(tw, tc):
    turns = ["Hi there", "Hello!", "How are you?", "Fine, thanks.", "Bye", "See you."]
    return {"messages": [_msg("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(turns)], "system": "S"}


def _tools(tw, tc):
    return {
        "tools": TOOLS,
        "messages": [
            _msg("user", "Weather in Paris?"),
            _msg("function", json.dumps(CALL)),
            _msg("observation", '{"temp": 20}'),
            _msg("assistant", "20 degrees."),
        ],
    }


def _parallel(tw, tc):
    return {
        "tools": TOOLS,
        "system": "Use tools.",
        "messages": [
            _msg("user", "Weather and time in Paris?"),
            _msg("function", json.dumps([CALL, CALL2])),
            _msg("observation", '{"temp": 20}'),
            _msg("assistant", "20 degrees, noon."),
        ],
    }


def _call_with_thought(tw, tc):
    return {
        "tools": TOOLS,
        "thinking": True,
        "messages": [
            _msg("user", "Weather in Paris?"),
            _msg("function", tw[0] + "I need the weather." + tw[1] + json.dumps(CALL)),
            _msg("observation", '{"temp": 20}'),
            _msg("assistant", tw[0] + "It said 20." + tw[1] + "20 degrees."),
        ],
    }


def _call_in_words(tw, tc):
    return {
        "tools": TOOLS,
        "thinking": True,
        "messages": [
            _msg("user", "Weather in Paris?"),
            _msg("function", "Let me check.\n" + tc[0] + json.dumps(CALL) + tc[1]),
            _msg("observation", '{"temp": 20}'),
            _msg("assistant", "20 degrees."),
        ],
    }


def _thinking(tw, tc):
    return {
        "system": "Think.",
        "thinking": True,
        "messages": [
            _msg("user", "2+2?"),
            _msg("assistant", tw[0] + "Add them." + tw[1] + "4"),
            _msg("user", "Capital of France?"),
            _msg("assistant", "Paris."),
            _msg("user", "3*3?"),
            _msg("assistant", tw[0] + "Multiply." + tw[1] + "9"),
        ],
    }


def _thinking_last_plain(tw, tc):
    return {
        "thinking": True,
        "messages": [
            _msg("user", "2+2?"),
            _msg("assistant", tw[0] + "Add them." + tw[1] + "4"),
            _msg("user", "Capital of France?"),
            _msg("assistant", "Paris."),
        ],
    }


def _override(tw, tc):
    return {**_parallel(tw, tc), "override": True}


CASES = {
    "single": _single,
    "system": _system,
    "multi": _multi,
    "tools": _tools,
    "parallel_calls": _parallel,
    "call_with_thought": _call_with_thought,
    "call_in_tool_call_words": _call_in_words,
    "thinking": _thinking,
    "thinking_last_plain": _thinking_last_plain,
    "tool_format_override": _override,
}
MODES = {
    "default": {"enable_thinking": True, "preserve_thinking": False, "mask_history": False},
    "no_thinking": {"enable_thinking": False, "preserve_thinking": False, "mask_history": False},
    "mixed": {"enable_thinking": None, "preserve_thinking": False, "mask_history": False},
    "preserve": {"enable_thinking": True, "preserve_thinking": True, "mask_history": False},
    "mask_history": {"enable_thinking": True, "preserve_thinking": False, "mask_history": True},
    "mask_history_preserve": {"enable_thinking": None, "preserve_thinking": True, "mask_history": True},
}


def tool_format_override(own: str | None) -> str:
    """The `tool_format:` the override case sets: another format than the template's own."""
    return "default" if own == "qwen" else "qwen"
