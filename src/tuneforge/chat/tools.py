"""Tool calls in generated text, in the model's tool format (data/tool_formats), split from the text before them:
what the API turns into OpenAI `tool_calls`."""

from __future__ import annotations

from tuneforge.data.tool_formats import FunctionCall, get_tool_format


def call_marker(tool_format: str) -> str:
    """Where a call begins in streamed text; "" when the call is the whole reply (llama3, glm4, mistral), so a
    streamed reply is held back until it ends."""
    return get_tool_format(tool_format).call_marker


def split_tool_calls(text: str, tool_format: str) -> tuple[str, list[tuple[str, str]]] | None:
    """(text before the first call, [(name, arguments_json)]), or None when the text holds no valid tool call (a
    malformed call stays text)."""
    fmt = get_tool_format(tool_format)
    calls = fmt.read_calls(text)
    start = text.find(fmt.call_marker) if fmt.call_marker else 0
    if not _found(calls) and fmt.call_prefix and fmt.call_prefix in text:
        # the decode kept the token the template writes before a call (mistral's [TOOL_CALLS]): parse what follows
        start = text.find(fmt.call_prefix)
        calls = fmt.read_calls(text[start + len(fmt.call_prefix) :])
    if not _found(calls):
        return None
    return text[: max(start, 0)].strip(), [(call.name, call.arguments) for call in calls]


def _found(calls: str | list[FunctionCall]) -> bool:
    return isinstance(calls, list) and len(calls) > 0
