"""What every tool format is: a FunctionCall, and the ToolFormat interface (LLaMA-Factory's ToolUtils).

A format turns tool descriptions into system text (`tool_prompt`), writes a reply's calls (`function_text`) and finds
the calls in generated text again (`extract`, the inverse of `function_text`). Output is byte for byte LLaMA-Factory
0.9.5's (src/llamafactory/data/tool_utils.py) for every input LF accepts; where LF would crash on bad input (a missing
key, arguments that are not JSON) we raise a one-line UserError instead.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from tuneforge.errors import UserError

FIX_TOOLS = 'write tools as a JSON list of {"name", "description", "parameters": {"type": "object", "properties"}}'
FIX_CALLS = 'write a call as {"name": ..., "arguments": {...}} (a JSON object), or a list of them'


class FunctionCall(NamedTuple):
    name: str
    arguments: str  # JSON text


class ToolFormat:
    """One family's tool-call format. Subclasses implement `_tool_prompt`, `_function_text` and `extract`."""

    name: str = ""
    # Where a call starts in generated text (the API holds streamed text back from here). "" when the call is the
    # whole reply (llama3, glm4, mistral once its special [TOOL_CALLS] token is decoded away).
    call_marker: str = ""
    # Text the template writes before a call that the format's extract does not expect ([TOOL_CALLS] for mistral).
    call_prefix: str = ""

    def tool_prompt(self, tools: list[dict[str, Any]]) -> str:
        """The system text describing the tools ("" for none), as LF's tool_formatter writes it."""
        if not tools:
            return ""
        try:
            return self._tool_prompt(tools)
        except (KeyError, TypeError, AttributeError) as e:
            raise UserError(f"tool format '{self.name}': bad tool description ({e!r})", fix=FIX_TOOLS) from e

    def function_text(self, calls: list[FunctionCall]) -> str:
        """The reply text for these calls, as LF's function_formatter writes it."""
        try:
            return self._function_text([FunctionCall(*call) for call in calls])
        except (json.JSONDecodeError, TypeError, AttributeError, IndexError) as e:
            raise UserError(f"tool format '{self.name}': bad function call ({e!r})", fix=FIX_CALLS) from e

    def extract(self, text: str) -> str | list[FunctionCall]:
        """The calls in generated text, or the text itself when it holds none (LF's tool_extractor)."""
        raise NotImplementedError

    def read_calls(self, text: str) -> str | list[FunctionCall]:
        """The calls in a model's reply, for the API: `extract`, plus the family's own syntax where LF's extractor
        misses it (glm4_moe)."""
        return self.extract(text)

    def _tool_prompt(self, tools: list[dict[str, Any]]) -> str:
        raise NotImplementedError

    def _function_text(self, calls: list[FunctionCall]) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<tool format {self.name}>"


def unwrap(tool: dict[str, Any]) -> Any:
    """An OpenAI {"type": "function", "function": {...}} entry → its function (LF: `tool.get("function", "")`)."""
    return tool.get("function", "") if tool.get("type") == "function" else tool


def wrap(tool: dict[str, Any]) -> dict[str, Any]:
    """A bare function description → OpenAI's {"type": "function", "function": {...}} form."""
    return tool if tool.get("type") == "function" else {"type": "function", "function": tool}


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def value_text(value: Any) -> str:
    """An argument value as the XML-style formats write it: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else dumps(value)
