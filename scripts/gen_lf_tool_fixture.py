"""Write tests/fixtures/lf_tool_formats.json: what LLaMA-Factory 0.9.5's own tool_utils.py produces for every tool
format it registers, on fixed tool lists, calls and model outputs. tests/unit/test_tool_formats.py compares ours.

Needs LF's source unpacked at /tmp/lf/llamafactory-0.9.5 (made importable by /tmp/lfimport.py); not run by the suite:
    .venv/bin/python scripts/gen_lf_tool_fixture.py
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "lf_tool_formats.json"
LLAMA3_DATE = datetime(2024, 7, 26)  # the llama3 prompt's "Today Date" ("26 Jul 2024")

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city name"},
                "unit": {"type": "string", "description": "Temperature unit", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "array", "description": "Forecast days", "items": {"type": "integer"}},
            },
            "required": ["city"],
        },
    },
}
SEARCH = {  # bare (not OpenAI-wrapped), nested object, non-ASCII text, a response schema (Gemma 4 reads it)
    "name": "search_docs",
    "description": "在文档中搜索 — search the docs ✓",
    "parameters": {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "检索词"},
            "filters": {
                "type": "object",
                "description": "Nested filters",
                "properties": {"lang": {"type": "string"}, "year": {"type": "integer"}},
                "required": ["lang"],
            },
            "exact": {"type": "boolean"},
        },
        "required": ["query", "filters"],
    },
    "response": {"type": "object", "description": "Matching documents"},
}
NO_ARGS = {"name": "get_time", "description": "The time now", "parameters": {"type": "object", "properties": {}}}
TOOL_LISTS = {"weather": [WEATHER], "search_and_time": [SEARCH, NO_ARGS], "all": [WEATHER, SEARCH, NO_ARGS]}

CALLS = {
    "one": [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}],
    "parallel": [
        {"name": "get_weather", "arguments": {"city": "Paris", "days": [1, 2]}},
        {"name": "get_time", "arguments": {}},
    ],
    "unicode_nested": [
        {
            "name": "search_docs",
            "arguments": {
                "query": '北京天气 ☀ "quoted"',
                "filters": {"lang": "zh", "year": 2024, "tags": ["a", "b"]},
                "exact": True,
                "limit": 3.5,
                "note": None,
            },
        }
    ],
}
MALFORMED = [  # model outputs that hold no valid call in some or all formats
    "<tool_call>{not json}</tool_call>",
    '<tool_call>\n{"name": "f"}\n</tool_call>',
    "Action: f\nAction Input: {bad",
    '{"name": "f"}',
    '{"name": "f", "parameters": {"x": 1',
    "[1, 2]",
    "get_weather\nnot json",
    "<|tool_call_start|>[f(x=y)]<|tool_call_end|>",
    "<|tool_call_start|>[f(x=1)",
    "<tool_calls>\nnot json\n</tool_calls>",
    "<seed:tool_call>\n<function=f>\n</seed:tool_call>",
    '<minimax:tool_call>\n<invoke name="f">\n<parameter name="x">1</parameter>\n</minimax:tool_call>',
    '<|tool_call>call:f{x:<|"|>a}<tool_call|>',
    "",
]
NO_CALL = "The weather in Paris is sunny, 24°C. 明天也是晴天。"


def _run(fn, *args):
    try:
        return {"ok": fn(*args)}
    except Exception as e:  # noqa: BLE001 - LF raising is a fact the fixture records
        return {"error": type(e).__name__}


def _jsonable(value):
    if isinstance(value, dict) and "ok" in value and isinstance(value["ok"], list):
        return {"ok": [list(call) for call in value["ok"]]}
    return value


def main() -> None:
    exec(Path("/tmp/lfimport.py").read_text(), {})  # makes llamafactory importable (stubs torchaudio)
    from llamafactory.data import tool_utils
    from llamafactory.data.tool_utils import TOOLS, FunctionCall

    class _FixedNow(datetime):
        @classmethod
        def now(cls, tz=None):
            return LLAMA3_DATE

    tool_utils.datetime = _FixedNow
    out = {
        "lf_version": "0.9.5",
        "llama3_date": LLAMA3_DATE.strftime("%d %b %Y"),
        "tool_lists": TOOL_LISTS,
        "calls": CALLS,
        "formats": {},
    }
    for name, utils in TOOLS.items():
        entry = {"tool_prompt": {}, "function_text": {}, "extract": {}}
        for key, tools in TOOL_LISTS.items():
            entry["tool_prompt"][key] = _run(utils.tool_formatter, tools)
        outputs = {"no_call": NO_CALL}
        for key, calls in CALLS.items():
            function_calls = [FunctionCall(c["name"], json.dumps(c["arguments"], ensure_ascii=False)) for c in calls]
            result = _run(utils.function_formatter, function_calls)
            entry["function_text"][key] = result
            if "ok" in result:
                outputs[f"call_{key}"] = result["ok"]
                outputs[f"text_then_call_{key}"] = "Sure, let me check.\n" + result["ok"]
                outputs[f"truncated_{key}"] = result["ok"][: len(result["ok"]) // 2]
        for i, text in enumerate(MALFORMED):
            outputs[f"malformed_{i}"] = text
        entry["extract"] = {
            key: {"text": text, **_jsonable(_run(utils.tool_extractor, text))} for key, text in outputs.items()
        }
        out["formats"][name] = entry
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(TOOLS)} formats: {', '.join(TOOLS)})", file=sys.stderr)


if __name__ == "__main__":
    main()
