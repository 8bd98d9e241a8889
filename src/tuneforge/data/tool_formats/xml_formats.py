"""The tool formats whose calls are XML-like, one tag per argument: qwen3_5 (`<function=...><parameter=...>`),
glm4_moe (GLM-4.5+ `<arg_key>/<arg_value>`), seed_oss (`<seed:tool_call>`) and minimax2 (`<minimax:tool_call>`).
Ported from LLaMA-Factory 0.9.5's tool_utils.py; the prompts are LF's, byte for byte."""

from __future__ import annotations

import json
import re
from typing import Any

from tuneforge.data.tool_formats.base import FunctionCall, ToolFormat, dumps, unwrap, value_text
from tuneforge.data.tool_formats.json_formats import QwenFormat

GLM4_MOE_TOOL_PROMPT = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>{tool_text}"
    "\n</tools>\n\nFor each function call, output the function name and arguments within the following XML format:"
    "\n<tool_call>{{function-name}}"
    "\n<arg_key>{{arg-key-1}}</arg_key>"
    "\n<arg_value>{{arg-value-1}}</arg_value>"
    "\n<arg_key>{{arg-key-2}}</arg_key>"
    "\n<arg_value>{{arg-value-2}}</arg_value>"
    "\n...\n</tool_call>\n"
)

MINIMAX_M2_TOOL_PROMPT = (
    "\n\n# Tools\n\nYou may call one or more tools to assist with the user query.\n"
    "Here are the tools available in JSONSchema format:\n\n<tools>\n{tool_text}</tools>\n\n"
    "When making tool calls, use XML format to invoke tools and pass parameters:\n"
    """\n<minimax:tool_call>\n<invoke name="tool-name-1">\n<parameter name="param-key-1">param-value-1</parameter>\n"""
    """<parameter name="param-key-2">param-value-2</parameter>\n...\n</invoke>\n</minimax:tool_call>"""
)

QWEN35_TOOL_PROMPT = (
    "\n\n# Tools\n\nYou have access to the following functions:\n\n<tools>{tool_text}"
    "\n</tools>\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n"
    "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n"
    "<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n"
    "</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n"
    "- Function calls MUST follow the specified format: "
    "an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n"
    "- Required parameters MUST be specified\n"
    "- You may provide optional reasoning for your function call in natural language "
    "BEFORE the function call, but NOT after\n"
    "- If there is no function call available, answer the question like normal with your current knowledge "
    "and do not tell the user about function calls\n</IMPORTANT>"
)

SEED_TOOL_PROMPT = (
    "system\nYou are Doubao, a helpful AI assistant. You may call one or more functions to assist with the user query."
    "Tool List:\nYou are authorized to use the following tools (described in JSON Schema format). Before performing "
    "any task, you must decide how to call them based on the descriptions and parameters of these tools.{tool_text}\n"
    "工具调用请遵循如下格式:\n<seed:tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>value_1"
    "</parameter>\n<parameter=example_parameter_2>This is the value for the second parameter\nthat can span\nmultiple "
    "lines</parameter>\n</function>\n</seed:tool_call>\n"
)


def _arguments_of(pairs: list[tuple[str, str]]) -> str:
    """(key, value text) pairs → a JSON object; values that parse as JSON are taken as JSON, others as strings."""
    args: dict[str, Any] = {}
    for key, raw_value in pairs:
        try:
            args[key.strip()] = json.loads(raw_value.strip())
        except json.JSONDecodeError:
            args[key.strip()] = raw_value.strip()
    return dumps(args)


def _arguments(params_block: str, pattern: str, strip_raw: bool) -> str:
    """`<parameter ...>value</parameter>` pairs → a JSON object; values that parse as JSON are taken as JSON."""
    args: dict[str, Any] = {}
    for key, raw_value in re.findall(re.compile(pattern, re.DOTALL), params_block):
        try:
            args[key] = json.loads(raw_value.strip())
        except json.JSONDecodeError:
            args[key] = raw_value.strip() if strip_raw else raw_value
    return dumps(args)


class Qwen35Format(ToolFormat):
    """Qwen3.5 (Qwen3-Coder's XML style): `<tool_call>\\n<function=name>\\n<parameter=key>\\nvalue\\n</parameter>`."""

    name, call_marker = "qwen3_5", "<tool_call>"

    def _tool_prompt(self, tools: list[dict[str, Any]]) -> str:
        tool_text = "".join(
            "\n" + dumps(tool.get("function", tool) if tool.get("type") == "function" else tool) for tool in tools
        )
        return QWEN35_TOOL_PROMPT.format(tool_text=tool_text)

    def _function_text(self, calls: list[FunctionCall]) -> str:
        texts = []
        for name, arguments in calls:
            text = f"<tool_call>\n<function={name}>"
            for key, value in json.loads(arguments).items():
                text += f"\n<parameter={key}>\n{value_text(value)}\n</parameter>"
            texts.append(text + "\n</function>\n</tool_call>")
        return "\n".join(texts)

    def extract(self, text: str) -> str | list[FunctionCall]:
        regex = re.compile(r"<tool_call>\s*<function=\s*([^\s<>]+)\s*(.*?)\s*</function>\s*</tool_call>", re.DOTALL)
        results = [
            FunctionCall(name.strip(), _arguments(block.strip(), r"<parameter=(.*?)>(.*?)</parameter>", True))
            for name, block in re.findall(regex, text)
        ]
        return results if results else text


_GLM_CALL = re.compile(
    r"<tool_call>\s*([\w.\-]+)\s*((?:<arg_key>.*?</arg_key>\s*<arg_value>.*?</arg_value>\s*)*)(?:</tool_call>|(?=<tool_call>)|$)",
    re.DOTALL,
)
_GLM_ARG = re.compile(r"<arg_key>(.*?)</arg_key>\s*<arg_value>(.*?)</arg_value>", re.DOTALL)


class Glm4MoeFormat(QwenFormat):
    """GLM-4.5 / 4.6 / 4.7: `<tool_call>name` then `<arg_key>k</arg_key>` / `<arg_value>v</arg_value>` lines. LF writes
    no closing `</tool_call>` (the template's end-of-turn follows) and its extractor is Qwen's JSON one, which does not
    find such calls: `extract` keeps that (LF's), `read_calls` (the API) also reads GLM's own calls."""

    name = "glm4_moe"
    prompt = GLM4_MOE_TOOL_PROMPT

    def read_calls(self, text: str) -> str | list[FunctionCall]:
        found = self.extract(text)
        if isinstance(found, list) and found:
            return found
        start = text.find("<tool_call>")
        calls, rest = [], text[start:] if start >= 0 else ""
        while rest.strip():
            match = _GLM_CALL.match(rest.strip())
            if not match:
                return text  # something that is no call after the calls: not a call reply
            calls.append(FunctionCall(match.group(1), _arguments_of(_GLM_ARG.findall(match.group(2)))))
            rest = rest.strip()[match.end() :]
        return calls if calls else text

    def _function_text(self, calls: list[FunctionCall]) -> str:
        texts = []
        for name, arguments in calls:
            text = "\n<tool_call>" + name
            for key, value in json.loads(arguments).items():
                text += "\n<arg_key>" + key + "</arg_key>" + "\n<arg_value>" + value_text(value) + "</arg_value>"
            texts.append(text)
        return "\n".join(texts)


class SeedOssFormat(ToolFormat):
    """ByteDance Seed-OSS: `<seed:tool_call>\\n<function=name\\n<parameter=key>value</parameter>` (LF's; without
    the `>` after the name that Seed-OSS's own template writes)."""

    name, call_marker = "seed_oss", "<seed:tool_call>"

    def _tool_prompt(self, tools: list[dict[str, Any]]) -> str:
        return SEED_TOOL_PROMPT.format(tool_text="\n" + dumps(tools))

    def _function_text(self, calls: list[FunctionCall]) -> str:
        texts = []
        for name, arguments in calls:
            text = "\n<seed:tool_call>\n<function=" + name
            for key, value in json.loads(arguments).items():
                text += "\n<parameter=" + key + ">" + value_text(value) + "</parameter>"
            texts.append(text + "\n</function>\n</seed:tool_call>")
        return "\n".join(texts)

    def extract(self, text: str) -> str | list[FunctionCall]:
        regex = re.compile(
            r"<seed:tool_call>\s*<function=\s*([^\s<]+)\s*(.*?)\s*</function>\s*</seed:tool_call>", re.DOTALL
        )
        # LF writes `<function=NAME` without the `>` Seed-OSS itself writes, and its regex then reads the name as
        # "NAME>"; we drop that `>` (the one place we differ from LF: a real Seed-OSS call gets its real name)
        results = [
            FunctionCall(
                name.strip().removesuffix(">"), _arguments(block.strip(), r"<parameter=(.*?)>(.*?)</parameter>", False)
            )
            for name, block in re.findall(regex, text)
        ]
        return results if results else text


class MiniMax2Format(ToolFormat):
    """MiniMax-M2: `<minimax:tool_call>\\n<invoke name="...">\\n<parameter name="...">value</parameter>`."""

    name, call_marker = "minimax2", "<minimax:tool_call>"

    def _tool_prompt(self, tools: list[dict[str, Any]]) -> str:
        return MINIMAX_M2_TOOL_PROMPT.format(
            tool_text="".join(f"<tool>{dumps(unwrap(tool))}</tool>\n" for tool in tools)
        )

    def _function_text(self, calls: list[FunctionCall]) -> str:
        texts = []
        for name, arguments in calls:
            text = f'<invoke name="{name}">'
            for key, value in json.loads(arguments).items():
                text += f'\n<parameter name="{key}">' + value_text(value) + "</parameter>"
            texts.append(text + "\n</invoke>")
        return "\n".join(texts)

    def extract(self, text: str) -> str | list[FunctionCall]:
        match = re.search(re.compile(r"<minimax:tool_call>\s*(.+?)\s*</minimax:tool_call>", re.DOTALL), text)
        if not match:
            return text
        invoke = re.compile(r"<invoke name=\"(.*?)\">(.*?)</invoke>", re.DOTALL)
        return [
            FunctionCall(name.strip(), _arguments(block, r"<parameter name=\"(.*?)\">(.*?)</parameter>", False))
            for name, block in re.findall(invoke, match.group(1))
        ]
