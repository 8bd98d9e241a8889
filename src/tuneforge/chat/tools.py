"""Tool calls in generated text, in the template's tool format, split from the text before them."""

from __future__ import annotations

from tuneforge.data.template import parse_tool_calls

# Where a tool call begins in each tool format (see data/template.py).
TOOL_MARKERS = {"qwen": "<tool_call>", "default": "Action:"}


def split_tool_calls(text: str, tool_format: str) -> tuple[str, list[tuple[str, str]]] | None:
    """(text before the first call, [(name, arguments_json)]), or None when the text holds no valid tool call."""
    calls = parse_tool_calls(text, tool_format)
    if not calls:
        return None
    start = text.find(TOOL_MARKERS[tool_format])
    return text[: max(start, 0)].strip(), calls
