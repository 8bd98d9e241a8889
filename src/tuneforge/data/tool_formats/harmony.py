"""gpt-oss's Harmony tool calls (format `harmony`; LLaMA-Factory 0.9.5 has none: its gpt_oss template uses `default`).

From OpenAI's harmony spec and gpt-oss's official chat template: tools are a TypeScript-like `namespace functions`
in a developer message, a call is `<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{args}<|call|>`
written after the `<|start|>assistant` the gpt_oss user slot already ends with (parallel calls: each its own
`<|start|>assistant` message). `tool_prompt` closes the system message and opens the developer one, so that in the
gpt_oss system slot (`<|start|>system<|message|>{{content}}<|end|>`) the tools land where gpt-oss reads them.
Generation must keep special tokens (`skip_special_tokens: false`) for the calls to be found in the reply.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tuneforge.data.tool_formats.base import FunctionCall, ToolFormat, dumps, unwrap

_CALL = re.compile(
    # the recipient in the channel (the harmony spec's model output) or in the role header (the chat template's form)
    r"(?:<\|channel\|>commentary\s+to=functions\.([^\s<]+)|to=functions\.([^\s<]+)\s*<\|channel\|>commentary)"
    r"\s*(?:<\|constrain\|>)?\s*(?:json)?\s*<\|message\|>(.*?)(?:<\|call\|>|<\|end\|>|$)",
    re.DOTALL,
)


class HarmonyFormat(ToolFormat):
    name, call_marker = "harmony", "<|channel|>commentary to=functions."

    def _tool_prompt(self, tools: list[dict[str, Any]]) -> str:
        text = "<|end|><|start|>developer<|message|># Tools\n\n## functions\n\nnamespace functions {\n\n"
        for tool in tools:
            tool = unwrap(tool)
            text += "// " + tool.get("description", "") + "\n" + "type " + tool["name"] + " = "
            params = tool.get("parameters") or {}
            if not params.get("properties"):
                text += "() => any;\n\n"
                continue
            text += "(_: {\n"
            required = params.get("required") or []
            for name, spec in params["properties"].items():
                if spec.get("description"):
                    text += "// " + spec["description"] + "\n"
                text += name + ("" if name in required else "?") + ": " + _ts_type(spec)
                if "default" in spec:
                    text += ", // default: " + (str(spec["default"]) if spec.get("enum") else dumps(spec["default"]))
                text += ",\n"
            text += "}) => any;\n\n"
        return text + "} // namespace functions"

    def _function_text(self, calls: list[FunctionCall]) -> str:
        return "<|start|>assistant".join(
            f"<|channel|>commentary to=functions.{name} <|constrain|>json<|message|>{arguments}<|call|>"
            for name, arguments in calls
        )

    def extract(self, text: str) -> str | list[FunctionCall]:
        results = []
        for in_channel, in_header, body in _CALL.findall(text):
            try:
                arguments = json.loads(body.strip())
            except json.JSONDecodeError:
                return text
            results.append(FunctionCall(in_channel or in_header, dumps(arguments)))
        return results if results else text


def _ts_type(spec: dict[str, Any]) -> str:
    """A JSON-schema type as the TypeScript-like type gpt-oss's chat template writes."""
    kind = spec.get("type")
    nullable = " | null" if spec.get("nullable") else ""
    if kind == "array":
        items = spec.get("items")
        if not items:
            return "any[]" + nullable
        simple = {"string": "string[]", "number": "number[]", "integer": "number[]", "boolean": "boolean[]"}
        if items.get("type") in simple:
            return simple[items["type"]] + nullable
        inner = _ts_type(items)
        return ("any[]" if len(inner) > 50 else inner + "[]") + nullable
    if isinstance(kind, list):
        return " | ".join(kind)
    if kind == "string":
        return ('"' + '" | "'.join(map(str, spec["enum"])) + '"') if spec.get("enum") else "string" + nullable
    if kind in ("number", "integer"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "object":
        props = spec.get("properties")
        if not props:
            return "object"
        required = spec.get("required") or []
        # the official template writes each nested type after a newline and its own 16-space indent
        fields = [
            f"{name}{'' if name in required else '?'}: \n{' ' * 16}{_ts_type(sub)}" for name, sub in props.items()
        ]
        return "{\n" + ", ".join(fields) + "}"
    return "any"
