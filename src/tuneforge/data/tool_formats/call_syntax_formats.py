"""The tool formats that write calls as code rather than JSON: gemma4 (`<|tool_call>call:name{k:v}<tool_call|>`, with
Gemma's `<|"|>` string quotes) and lfm2 (Python call syntax `[name(k="v")]`). Ported from LLaMA-Factory 0.9.5's
tool_utils.py; output is LF's, byte for byte."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from tuneforge.data.tool_formats.base import FunctionCall, ToolFormat, dumps

LFM2_TOOL_PROMPT = "List of tools: <|tool_list_start|>{tool_text}<|tool_list_end|>"
_Q = '<|"|>'  # Gemma 4's string quote


class Gemma4Format(ToolFormat):
    """Gemma 4: declarations `declaration:name{description:<|"|>...<|"|>,parameters:{...}}`, calls
    `<|tool_call>call:name{key:value,...}<tool_call|>` (keys sorted)."""

    name, call_marker = "gemma4", "<|tool_call>"

    def _tool_prompt(self, tools: list[dict[str, Any]]) -> str:
        declarations = []
        for tool in tools:
            function = tool.get("function", tool) if tool.get("type") == "function" else tool
            declaration = (
                f"declaration:{function['name']}" + "{" + f"description:{_Q}{function.get('description', '')}{_Q}"
            )
            params = function.get("parameters")
            if params:
                parts = []
                if params.get("properties"):
                    parts.append(f"properties:{{{_gemma_properties(params['properties'])}}}")
                if params.get("required"):
                    parts.append("required:[" + ",".join(f"{_Q}{item}{_Q}" for item in params["required"]) + "]")
                if params.get("type"):
                    parts.append(f"type:{_Q}{str(params['type']).upper()}{_Q}")
                declaration += f",parameters:{{{','.join(parts)}}}"
            response = function.get("response")
            if response:
                parts = []
                if response.get("description"):
                    parts.append(f"description:{_Q}{response['description']}{_Q}")
                response_type = str(response.get("type", "")).upper()
                if response_type == "OBJECT":
                    parts.append(f"type:{_Q}{response_type}{_Q}")
                declaration += f",response:{{{','.join(parts)}}}"
            declarations.append(declaration + "}")
        return "\n".join(declarations)

    def _function_text(self, calls: list[FunctionCall]) -> str:
        texts = []
        for name, raw_arguments in calls:
            try:
                arguments = json.loads(raw_arguments)
            except (TypeError, json.JSONDecodeError):
                arguments = raw_arguments
            text = f"<|tool_call>call:{name}" + "{"
            if isinstance(arguments, dict):
                text += ",".join(f"{key}:{_gemma_value(arguments[key], False)}" for key in sorted(arguments))
            elif isinstance(arguments, str):
                text += arguments
            else:
                text += _gemma_value(arguments, False)
            texts.append(text + "}<tool_call|>")
        return "".join(texts)

    def extract(self, text: str) -> str | list[FunctionCall]:
        found = re.findall(re.compile(r"<\|tool_call\>call:([^{\s]+)\{(.*?)\}<tool_call\|>", re.DOTALL), text)
        if not found:
            return text
        results = []
        for name, block in found:
            arguments = _gemma_parse(block)
            results.append(FunctionCall(name.strip(), arguments if isinstance(arguments, str) else dumps(arguments)))
        return results


def _gemma_properties(properties: dict[str, Any]) -> str:
    parts = []
    for name, schema in properties.items():
        items = []
        if schema.get("description"):
            items.append(f"description:{_Q}{schema['description']}{_Q}")
        if schema.get("type"):
            items.append(f"type:{_Q}{str(schema['type']).upper()}{_Q}")
        parts.append(f"{name}:{{{','.join(items)}}}")
    return ",".join(parts)


def _gemma_value(value: Any, escape_keys: bool = True) -> str:
    if isinstance(value, str):
        return f"{_Q}{value}{_Q}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        items = []
        for key in sorted(value.keys()):
            key_text = f"{_Q}{key}{_Q}" if escape_keys else str(key)
            items.append(f"{key_text}:{_gemma_value(value[key], escape_keys=escape_keys)}")
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_gemma_value(item, escape_keys=escape_keys) for item in value) + "]"
    if value is None:
        return "null"
    return str(value)


def _gemma_parse(block: str) -> Any:
    """A call's `k:v,...` text → its arguments (a dict), or the text when it does not parse."""
    text = block.strip()
    if not text:
        return {}
    # re-wrap as an object, Gemma's <|"|>quotes<|"|> as JSON strings, bare keys quoted
    normalized = re.sub(r"<\|\"\|\>(.*?)<\|\"\|\>", lambda m: dumps(m.group(1)), "{" + text + "}", flags=re.DOTALL)
    normalized = re.sub(r"(^|[{\s,])([A-Za-z_][A-Za-z0-9_]*)(\s*:)", r'\1"\2"\3', normalized)
    for candidate in (normalized, text):
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            pass
    return text


class Lfm2Format(ToolFormat):
    """LFM2 / LFM2.5 (Liquid AI): `<|tool_call_start|>[name(key="value", n=1)]<|tool_call_end|>`."""

    name, call_marker = "lfm2", "<|tool_call_start|>"

    def _tool_prompt(self, tools: list[dict[str, Any]]) -> str:
        listed = [tool.get("function", tool) if tool.get("type") == "function" else tool for tool in tools]
        return LFM2_TOOL_PROMPT.format(tool_text=dumps(listed))

    def _function_text(self, calls: list[FunctionCall]) -> str:
        texts = []
        for name, arguments in calls:
            kwargs = [
                f'{key}="{value}"' if isinstance(value, str) else f"{key}={dumps(value)}"
                for key, value in json.loads(arguments).items()
            ]
            texts.append(f"{name}({', '.join(kwargs)})")
        return f"<|tool_call_start|>[{', '.join(texts)}]<|tool_call_end|>"

    def extract(self, text: str) -> str | list[FunctionCall]:
        start, end_marker = text.find("<|tool_call_start|>"), "<|tool_call_end|>"
        if start == -1:
            return text
        end = text.find(end_marker, start)
        if end == -1:
            return text
        try:
            tree = ast.parse(text[start + len("<|tool_call_start|>") : end].strip(), mode="eval")
        except SyntaxError:
            return text
        if isinstance(tree.body, ast.List):
            nodes = tree.body.elts
        elif isinstance(tree.body, ast.Call):
            nodes = [tree.body]
        else:
            return text
        results = []
        for node in nodes:
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                return text
            args = {}
            for keyword in node.keywords:
                try:
                    args[keyword.arg] = _python_value(keyword.value)
                except (ValueError, SyntaxError):
                    return text
            results.append(FunctionCall(node.func.id, dumps(args)))
        return results if results else text


def _python_value(node: ast.AST) -> Any:
    """An argument's AST → its value; JSON's true / false / null are accepted as names."""
    if isinstance(node, ast.Name):
        if node.id in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[node.id]
        raise ValueError(f"Unknown identifier: {node.id}")
    return ast.literal_eval(node)
