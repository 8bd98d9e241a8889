"""The tool formats whose calls are JSON objects: default (ReAct "Action:"), glm4, llama3, mistral, qwen (Qwen2.5 /
Qwen3 / Hermes `<tool_call>`), ling and minimax1. Ported from LLaMA-Factory 0.9.5's tool_utils.py; the prompts are
LF's, byte for byte."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from tuneforge.data.tool_formats.base import FunctionCall, ToolFormat, dumps, unwrap, wrap
from tuneforge.errors import UserError

DEFAULT_TOOL_PROMPT = (
    "You have access to the following tools:\n{tool_text}"
    "Use the following format if using a tool:\n"
    "```\n"
    "Action: tool name (one of [{tool_names}])\n"
    "Action Input: the input to the tool, in a JSON format representing the kwargs "
    """(e.g. ```{{"input": "hello world", "num_beams": 5}}```)\n"""
    "```\n"
)

GLM4_TOOL_PROMPT = (
    "你是一个名为 ChatGLM 的人工智能助手。你是基于智谱 AI 公司训练的语言模型 GLM-4 模型开发的，"
    "你的任务是针对用户的问题和要求提供适当的答复和支持。\n\n# 可用工具{tool_text}"
)

LLAMA3_TOOL_PROMPT = (
    "Cutting Knowledge Date: December 2023\nToday Date: {date}\n\n"
    "You have access to the following functions. To call a function, please respond with JSON for a function call. "
    """Respond in the format {{"name": function name, "parameters": dictionary of argument name and its value}}. """
    "Do not use variables.\n\n{tool_text}"
)

MINIMAX_M1_TOOL_PROMPT = (
    "You are provided with these tools:\n<tools>\n{tool_text}</tools>\n\n"
    "If you need to call tools, please respond with <tool_calls></tool_calls> XML tags, and provide tool-name and "
    "json-object of arguments, following the format below:\n<tool_calls>\n"
    """{{"name": <tool-name-1>, "arguments": <args-json-object-1>}}\n...\n</tool_calls>"""
)

QWEN_TOOL_PROMPT = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>{tool_text}"
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    """<tool_call></tool_call> XML tags:\n<tool_call>\n{{"name": <function-name>, """
    """"arguments": <args-json-object>}}\n</tool_call>"""
)

LING_TOOL_PROMPT = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>{tool_text}"
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    """<tool_call></tool_call> XML tags:\n<tool_call>\n{{"name": <function-name>, """
    """"arguments": <args-json-object>}}\n</tool_call>"""
)


class DefaultFormat(ToolFormat):
    """ReAct style: `Action: name` / `Action Input: {json}` (LF's default, used by most templates)."""

    name, call_marker = "default", "Action:"

    def _tool_prompt(self, tools: list[dict[str, Any]]) -> str:
        tool_text, tool_names = "", []
        for tool in tools:
            tool = unwrap(tool)
            parameters = tool.get("parameters") or {}  # LF needs them; a tool without arguments lists none
            param_text = ""
            for name, param in (parameters.get("properties") or {}).items():
                required = ", required" if name in parameters.get("required", []) else ""
                enum = ", should be one of [{}]".format(", ".join(map(str, param["enum"]))) if param.get("enum") else ""
                items = (
                    ", where each item should be {}".format(param["items"].get("type", ""))
                    if param.get("items")
                    else ""
                )
                param_text += (
                    f"  - {name} ({param.get('type', '')}{required}): {param.get('description', '')}{enum}{items}\n"
                )
            desc = tool.get("description", "")
            tool_text += f"> Tool Name: {tool['name']}\nTool Description: {desc}\nTool Args:\n{param_text}\n"
            tool_names.append(tool["name"])
        return DEFAULT_TOOL_PROMPT.format(tool_text=tool_text, tool_names=", ".join(tool_names))

    def _function_text(self, calls: list[FunctionCall]) -> str:
        return "\n".join(f"Action: {name}\nAction Input: {arguments}" for name, arguments in calls)

    def extract(self, text: str) -> str | list[FunctionCall]:
        regex = re.compile(r"Action:\s*([a-zA-Z0-9_]+)\s*Action Input:\s*(.+?)(?=\s*Action:|\s*$)", re.DOTALL)
        found = re.findall(regex, text)
        if not found:
            return text
        results = []
        for name, tool_input in found:
            try:
                arguments = json.loads(tool_input.strip().strip('"').strip("```"))  # noqa: B005 (LF's strip)
            except json.JSONDecodeError:
                return text
            results.append(FunctionCall(name.strip(), dumps(arguments)))
        return results


class Glm4Format(ToolFormat):
    """GLM-4 (ChatGLM4, GLM-4-0414): the reply is `name\\n{json}`; one call per reply."""

    name, call_marker = "glm4", ""

    def _tool_prompt(self, tools: list[dict[str, Any]]) -> str:
        tool_text = ""
        for tool in tools:
            tool = unwrap(tool)
            body = json.dumps(tool, indent=4, ensure_ascii=False)
            tool_text += f"\n\n## {tool['name']}\n\n{body}\n在调用上述函数时，请使用 Json 格式表示调用的参数。"
        return GLM4_TOOL_PROMPT.format(tool_text=tool_text)

    def _function_text(self, calls: list[FunctionCall]) -> str:
        if len(calls) > 1:
            raise UserError("GLM-4 does not support parallel functions.", fix="one call per function turn")
        return f"{calls[0].name}\n{calls[0].arguments}"

    def extract(self, text: str) -> str | list[FunctionCall]:
        if "\n" not in text:
            return text
        name, tool_input = text.split("\n", maxsplit=1)
        try:
            arguments = json.loads(tool_input.strip())
        except json.JSONDecodeError:
            return text
        return [FunctionCall(name, dumps(arguments))]


class Llama3Format(ToolFormat):
    """Llama 3.1+ / Llama 4 JSON tool calling (tools_in_user_message=False): `{"name", "parameters"}`. The prompt
    holds a date, today's unless `date` (e.g. "26 Jul 2024") is given."""

    name, call_marker = "llama3", ""

    def __init__(self, date: str | None = None):
        self.date = date

    def _tool_prompt(self, tools: list[dict[str, Any]]) -> str:
        date = self.date or datetime.now().strftime("%d %b %Y")
        tool_text = "".join(json.dumps(wrap(tool), indent=4, ensure_ascii=False) + "\n\n" for tool in tools)
        return LLAMA3_TOOL_PROMPT.format(date=date, tool_text=tool_text)

    def _function_text(self, calls: list[FunctionCall]) -> str:
        objects = [{"name": name, "parameters": json.loads(arguments)} for name, arguments in calls]
        return dumps(objects[0] if len(objects) == 1 else objects)

    def extract(self, text: str) -> str | list[FunctionCall]:
        return _json_calls(text, "parameters")


class MistralFormat(ToolFormat):
    """Mistral v0.3+ (`[TOOL_CALLS] [{"name", "arguments"}]`; the template writes the [TOOL_CALLS] token)."""

    name, call_marker, call_prefix = "mistral", "", "[TOOL_CALLS]"

    def _tool_prompt(self, tools: list[dict[str, Any]]) -> str:
        return "[AVAILABLE_TOOLS] " + dumps([wrap(tool) for tool in tools]) + "[/AVAILABLE_TOOLS]"

    def _function_text(self, calls: list[FunctionCall]) -> str:
        return dumps([{"name": name, "arguments": json.loads(arguments)} for name, arguments in calls])

    def extract(self, text: str) -> str | list[FunctionCall]:
        return _json_calls(text, "arguments")


def _json_calls(text: str, arguments_key: str) -> str | list[FunctionCall]:
    """The whole text as one JSON call or a list of them (llama3, mistral)."""
    try:
        tools = json.loads(text.strip())
    except json.JSONDecodeError:
        return text
    tools = tools if isinstance(tools, list) else [tools]
    try:
        return [FunctionCall(tool["name"], dumps(tool[arguments_key])) for tool in tools]
    except (KeyError, TypeError):  # LF catches KeyError; a list of non-objects is no call either
        return text


class QwenFormat(ToolFormat):
    """Qwen2.5 / Qwen3 / Hermes: `<tool_call>\\n{"name", "arguments"}\\n</tool_call>` per call."""

    name, call_marker = "qwen", "<tool_call>"
    prompt = QWEN_TOOL_PROMPT

    def _tool_prompt(self, tools: list[dict[str, Any]]) -> str:
        return self.prompt.format(tool_text="".join("\n" + dumps(wrap(tool)) for tool in tools))

    def _function_text(self, calls: list[FunctionCall]) -> str:
        texts = [dumps({"name": name, "arguments": json.loads(arguments)}) for name, arguments in calls]
        return "\n".join(f"<tool_call>\n{text}\n</tool_call>" for text in texts)

    def extract(self, text: str) -> str | list[FunctionCall]:
        regex = re.compile(r"<tool_call>(.+?)</tool_call>(?=\s*<tool_call>|\s*$)", re.DOTALL)
        found = re.findall(regex, text)
        if not found:
            return text
        results = []
        for body in found:
            try:
                tool = json.loads(body.strip())
            except json.JSONDecodeError:
                return text
            if not isinstance(tool, dict) or "name" not in tool or "arguments" not in tool:
                return text
            results.append(FunctionCall(tool["name"], dumps(tool["arguments"])))
        return results


class LingFormat(QwenFormat):
    """Ling v2 (inclusionAI): Qwen's calls, its own prompt ending in "detailed thinking off"."""

    name = "ling"
    prompt = LING_TOOL_PROMPT

    def _tool_prompt(self, tools: list[dict[str, Any]]) -> str:
        return super()._tool_prompt(tools) + "\n" + "detailed thinking off"


class MiniMax1Format(ToolFormat):
    """MiniMax-M1: `<tool_calls>` with one JSON call per line."""

    name, call_marker = "minimax1", "<tool_calls>"

    def _tool_prompt(self, tools: list[dict[str, Any]]) -> str:
        return MINIMAX_M1_TOOL_PROMPT.format(tool_text="".join(dumps(unwrap(tool)) + "\n" for tool in tools))

    def _function_text(self, calls: list[FunctionCall]) -> str:
        texts = [dumps({"name": name, "arguments": json.loads(arguments)}) for name, arguments in calls]
        return "<tool_calls>\n" + "\n".join(texts) + "\n</tool_calls>"

    def extract(self, text: str) -> str | list[FunctionCall]:
        match = re.search(re.compile(r"<tool_calls>\s*(.+?)\s*</tool_calls>", re.DOTALL), text)
        if not match:
            return text
        results = []
        for line in match.group(1).split("\n"):
            line = line.strip()
            if not line:
                continue
            try:
                call = json.loads(line)
                results.append(FunctionCall(call["name"], dumps(call["arguments"])))
            except json.JSONDecodeError:
                continue
            except (KeyError, TypeError):  # LF raises KeyError here; a line that is no call is skipped like bad JSON
                continue
        return results
