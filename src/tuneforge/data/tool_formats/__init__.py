"""Each model family's tool-call format, by name: how tools are described in the system prompt, how a reply writes
its calls, and how calls are found in generated text. LLaMA-Factory 0.9.5's formats (tool_utils.py), byte for byte,
plus `harmony` (gpt-oss), which LF lacks. docs/tools.md lists them with the templates that use each."""

from __future__ import annotations

import json
from typing import Any

from tuneforge.data.tool_formats.base import FIX_CALLS, FIX_TOOLS, FunctionCall, ToolFormat
from tuneforge.data.tool_formats.call_syntax_formats import Gemma4Format, Lfm2Format
from tuneforge.data.tool_formats.harmony import HarmonyFormat
from tuneforge.data.tool_formats.json_formats import (
    DefaultFormat,
    Glm4Format,
    LingFormat,
    Llama3Format,
    MiniMax1Format,
    MistralFormat,
    QwenFormat,
)
from tuneforge.data.tool_formats.xml_formats import Glm4MoeFormat, MiniMax2Format, Qwen35Format, SeedOssFormat
from tuneforge.errors import UserError

__all__ = [
    "TOOL_FORMAT_NAMES",
    "FunctionCall",
    "ToolFormat",
    "calls_from_json",
    "get_tool_format",
    "tools_from_json",
]

_FORMATS: dict[str, type[ToolFormat]] = {
    # LLaMA-Factory 0.9.5's TOOLS, in its order
    "default": DefaultFormat,
    "gemma4": Gemma4Format,
    "glm4": Glm4Format,
    "llama3": Llama3Format,
    "lfm2": Lfm2Format,
    "minimax1": MiniMax1Format,
    "minimax2": MiniMax2Format,
    "mistral": MistralFormat,
    "qwen": QwenFormat,
    "qwen3_5": Qwen35Format,
    "glm4_moe": Glm4MoeFormat,
    "seed_oss": SeedOssFormat,
    "ling": LingFormat,
    # ours
    "harmony": HarmonyFormat,
}
TOOL_FORMAT_NAMES: list[str] = list(_FORMATS)


def get_tool_format(name: str, *, date: str | None = None) -> ToolFormat:
    """The format called `name`. `date` is the llama3 prompt's "Today Date" (e.g. "26 Jul 2024"; default: today)."""
    if name not in _FORMATS:
        raise UserError(
            f"unknown tool format '{name}'", where="tool_format", fix=f"known: {', '.join(TOOL_FORMAT_NAMES)}"
        )
    return Llama3Format(date) if name == "llama3" else _FORMATS[name]()


def tools_from_json(text: str, where: str | None = None) -> list[dict[str, Any]]:
    """A conversation's tools (JSON text: a list of function descriptions, bare or OpenAI-wrapped, or one of them)."""
    tools = _load(text, "tools", where, FIX_TOOLS)
    tools = tools if isinstance(tools, list) else [tools]
    if not all(isinstance(tool, dict) and isinstance(_function(tool).get("name"), str) for tool in tools):
        raise UserError(
            f"tools must be a JSON list of function descriptions: {text[:80]!r}", where=where, fix=FIX_TOOLS
        )
    return tools


def calls_from_json(text: str, where: str | None = None) -> list[FunctionCall]:
    """A function turn's JSON ({"name", "arguments"} or a list of them) → its calls (LF's FunctionFormatter)."""
    calls = _load(text, "function call", where, FIX_CALLS)
    try:
        return [FunctionCall(c["name"], json.dumps(c["arguments"], ensure_ascii=False)) for c in _as_list(calls)]
    except (KeyError, TypeError) as e:
        raise UserError(
            f"a function call needs 'name' and 'arguments': {text[:80]!r}", where=where, fix=FIX_CALLS
        ) from e


def _load(text: str, what: str, where: str | None, fix: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{what} is not valid JSON ({e}): {text[:80]!r}", where=where, fix=fix) from e


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _function(tool: dict) -> dict:
    inner = tool.get("function") if tool.get("type") == "function" else tool
    return inner if isinstance(inner, dict) else {}
