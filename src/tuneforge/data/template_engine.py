"""The template engine: one chat format (slots from templates.yaml) turns a Conversation into token ids.

Tokenization follows LLaMA-Factory: every formatted piece is encoded on its own with add_special_tokens=False and
`{{bos_token}}` / `{{eos_token}}` become the tokenizer's ids, so training and generation see the same ids.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tuneforge.data.conversation import (
    ASSISTANT,
    FUNCTION,
    OBSERVATION,
    PROMPT_ROLES,
    RESPONSE_ROLES,
    USER,
    Conversation,
    Message,
)
from tuneforge.errors import UserError

_TOKEN = re.compile(r"(\{\{(?:bos_token|eos_token)\}\})")  # split keeps the placeholder
_FIELD = re.compile(r"\{\{(content|idx)\}\}")

DEFAULT_TOOL_PROMPT = (
    "You have access to the following tools:\n{tool_text}"
    "Use the following format if using a tool:\n```\n"
    "Action: tool name (one of [{tool_names}])\n"
    "Action Input: the input to the tool, in a JSON format representing the kwargs "
    '(e.g. ```{{"input": "hello world", "num_beams": 5}}```)\n```\n'
)
QWEN_TOOL_PROMPT = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>{tool_text}"
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{{"name": <function-name>, "arguments": <args-json-object>}}'
    "\n</tool_call>"
)


@dataclass
class Template:
    """One chat format. Slots are strings with {{content}}, {{idx}}, {{bos_token}}, {{eos_token}} (templates.yaml)."""

    name: str
    prefix: str = ""
    system: str = "{{content}}"
    user: str = "{{content}}"
    assistant: str | None = None
    observation: str | None = None
    function: str | None = None
    tool_format: str = "default"
    default_system: str = ""
    stop_words: list[str] = field(default_factory=list)
    efficient_eos: bool = False
    replace_eos: bool = False
    system_in_user: bool = False

    def __post_init__(self):
        if self.assistant is None:
            self.assistant = "{{content}}" if self.efficient_eos else "{{content}}{{eos_token}}"
        self.observation = self.observation or self.user
        self.function = self.function or self.assistant
        if self.tool_format not in ("default", "qwen"):
            raise ValueError(f"template {self.name}: unknown tool_format {self.tool_format!r}")
        if self.system_in_user and _TOKEN.search(self.system):
            raise ValueError(f"template {self.name}: a system slot put inside the user turn cannot hold tokens")

    # ---- encoding -------------------------------------------------------------------------------------------
    def encode_multiturn(
        self, tokenizer, conv: Conversation, default_system: str | None = None
    ) -> list[tuple[list[int], list[int]]]:
        """(prompt_ids, response_ids) per turn pair; the first prompt holds prefix/BOS and system; each response
        ends with the template's EOS / end-of-turn token. A trailing prompt without a reply is left out."""
        segments = self._encode_messages(tokenizer, conv, default_system)
        return [(segments[i], segments[i + 1]) for i in range(0, len(segments) - 1, 2)]

    def encode_prompt(self, tokenizer, conv: Conversation, default_system: str | None = None) -> list[int]:
        """Ids for generation: history plus the final prompt turn, ending where the assistant's reply begins."""
        if not conv.messages or conv.messages[-1].role not in PROMPT_ROLES:
            msg = "a prompt for generation must end with a user or observation turn"
            raise UserError(msg, where=conv.source or None)
        return [i for seg in self._encode_messages(tokenizer, conv, default_system) for i in seg]

    def render(self, tokenizer, conv: Conversation, default_system: str | None = None) -> str:
        """The text the model sees: the decode of the full encoding, special tokens included."""
        ids = [i for seg in self._encode_messages(tokenizer, conv, default_system) for i in seg]
        return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def _encode_messages(self, tokenizer, conv: Conversation, default_system: str | None) -> list[list[int]]:
        """Ids per message; message 0 also carries the prefix and the system prompt (+ tool descriptions)."""
        _check_roles(conv)
        system = conv.system or (self.default_system if default_system is None else default_system)
        system += _tool_text(self.tool_format, conv.tools, conv.source) if conv.tools else ""
        slots = {USER: self.user, ASSISTANT: self.assistant, OBSERVATION: self.observation, FUNCTION: self.function}
        out = []
        for i, msg in enumerate(conv.messages):
            ids, content = [], msg.content
            if msg.role == FUNCTION:
                content = _function_text(self.tool_format, _parse_calls(content, conv.source))
            if i == 0:
                ids += self._slot_ids(tokenizer, self.prefix)
                if system and self.system_in_user:
                    content = _fill(self.system, system) + content
                elif system:
                    ids += self._slot_ids(tokenizer, self.system, system)
            ids += self._slot_ids(tokenizer, slots[msg.role], content, i // 2)
            out.append(ids)
        return out

    @staticmethod
    def _slot_ids(tokenizer, slot: str, content: str = "", idx: int = 0) -> list[int]:
        ids: list[int] = []
        for piece in _TOKEN.split(slot):
            if piece in ("{{bos_token}}", "{{eos_token}}"):
                tid = tokenizer.bos_token_id if piece == "{{bos_token}}" else tokenizer.eos_token_id
                ids += [] if tid is None else [tid]
            elif text := _fill(piece, content, idx):
                ids += tokenizer.encode(text, add_special_tokens=False)
        return ids

    # ---- generation and tokenizer -----------------------------------------------------------------------------
    def stop_token_ids(self, tokenizer) -> list[int]:
        """EOS plus the stop words that are single tokens of this tokenizer, for generation."""
        ids = [tokenizer.eos_token_id] + [_single_token_id(tokenizer, w) for w in self.stop_words]
        return list(dict.fromkeys(i for i in ids if i is not None))

    def fix_tokenizer(self, tokenizer) -> int:
        """Fit the tokenizer to the template, in place, like LLaMA-Factory: with replace_eos the first stop word
        becomes EOS; a tokenizer without EOS gets `<|endoftext|>`; without pad, pad = EOS; the other stop words
        become special tokens. Returns how many tokens were ADDED to the vocabulary: when > 0 the model's
        embeddings must be resized (`model.resize_token_embeddings(len(tokenizer))`)."""
        added, stop_words = 0, list(self.stop_words)
        if self.replace_eos and stop_words:
            added += _set_eos(tokenizer, stop_words.pop(0))
        if tokenizer.eos_token_id is None:
            added += _set_eos(tokenizer, "<|endoftext|>")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        if stop_words:
            added += tokenizer.add_special_tokens(
                {"extra_special_tokens": stop_words}, replace_extra_special_tokens=False
            )
        return added

    def to_jinja(self) -> str:
        """An HF chat_template giving the same ids as encode_prompt / encode_multiturn for system, user, assistant
        and tool (observation) messages. Tools and tool calls are not rendered. The user slot already ends with
        the assistant header, so add_generation_prompt changes nothing; efficient_eos's final EOS is not added."""

        def out(expr: str) -> str:
            return "{{ " + expr + " }}" if expr else ""

        system_text = _jinja_expr(self.system, "system_message")
        j = (
            "{% if messages and messages[0]['role'] == 'system' %}"
            "{% set system_message = messages[0]['content'] or " + _jinja_str(self.default_system) + " %}"
            "{% set loop_messages = messages[1:] %}"
            "{% else %}{% set system_message = " + _jinja_str(self.default_system) + " %}"
            "{% set loop_messages = messages %}{% endif %}" + out(_jinja_expr(self.prefix))
        )
        if not self.system_in_user:
            j += "{% if system_message %}" + out(system_text) + "{% endif %}"
        j += "{% for message in loop_messages %}{% set content = message['content'] %}"
        if self.system_in_user:
            j += "{% if loop.first and system_message %}{% set content = " + system_text + " + content %}{% endif %}"
        return j + (
            "{% if message['role'] == 'user' %}" + out(_jinja_expr(self.user)) + ""
            "{% elif message['role'] == 'assistant' %}" + out(_jinja_expr(self.assistant)) + ""
            "{% elif message['role'] in ['tool', 'observation'] %}" + out(_jinja_expr(self.observation)) + ""
            "{% endif %}{% endfor %}"
        )


# ---- helpers ------------------------------------------------------------------------------------------------------
def _fill(text: str, content: str, idx: int = 0) -> str:
    return _FIELD.sub(lambda m: content if m.group(1) == "content" else str(idx), text)


def _check_roles(conv: Conversation) -> None:
    if not conv.messages:
        raise UserError("the conversation has no messages", where=conv.source or None)
    for i, msg in enumerate(conv.messages):
        expected = PROMPT_ROLES if i % 2 == 0 else RESPONSE_ROLES
        if msg.role not in expected:
            raise UserError(
                f"message {i} has role '{msg.role}', expected one of {', '.join(expected)}",
                where=conv.source or None,
                fix="turns must alternate prompt (user/observation) and reply (assistant/function), prompt first",
            )


def _load_json(text: str, where: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{what} is not valid JSON ({e}): {text[:80]!r}", where=where or None) from e


def _parse_calls(content: str, where: str) -> list[tuple[str, Any]]:
    """A function turn's JSON ({"name", "arguments"} or a list of them) → [(name, arguments)]."""
    calls = _load_json(content, where, "function call")
    try:
        return [(c["name"], c["arguments"]) for c in (calls if isinstance(calls, list) else [calls])]
    except (KeyError, TypeError) as e:
        raise UserError(f"a function call needs 'name' and 'arguments': {content[:80]!r}", where=where or None) from e


def _tool_text(fmt: str, tools_json: str, where: str) -> str:
    """The system text describing the tools (LLaMA-Factory's default / qwen tool formats); "" for no tools."""
    tools = _load_json(tools_json, where, "tools")
    tools = tools if isinstance(tools, list) else [tools]
    tools = [t["function"] if isinstance(t, dict) and t.get("type") == "function" else t for t in tools]
    if not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools):
        raise UserError(
            f"tools must be a JSON list of {{name, description, parameters}}: {tools_json[:80]!r}", where=where or None
        )
    if not tools:
        return ""
    if fmt == "qwen":
        wrapped = "".join("\n" + json.dumps({"type": "function", "function": t}, ensure_ascii=False) for t in tools)
        return QWEN_TOOL_PROMPT.format(tool_text=wrapped)
    text = ""
    for tool in tools:
        params = tool.get("parameters") or {}
        args = ""
        for name, p in (params.get("properties") or {}).items():
            required = ", required" if name in params.get("required", []) else ""
            enum = ", should be one of [{}]".format(", ".join(p["enum"])) if p.get("enum") else ""
            items = ", where each item should be {}".format(p["items"].get("type", "")) if p.get("items") else ""
            args += f"  - {name} ({p.get('type', '')}{required}): {p.get('description', '')}{enum}{items}\n"
        text += f"> Tool Name: {tool['name']}\nTool Description: {tool.get('description', '')}\nTool Args:\n{args}\n"
    return DEFAULT_TOOL_PROMPT.format(tool_text=text, tool_names=", ".join(t["name"] for t in tools))


def _function_text(fmt: str, calls: list[tuple[str, Any]]) -> str:
    if fmt == "qwen":
        return "\n".join(
            "<tool_call>\n" + json.dumps({"name": n, "arguments": a}, ensure_ascii=False) + "\n</tool_call>"
            for n, a in calls
        )
    return "\n".join(f"Action: {n}\nAction Input: {json.dumps(a, ensure_ascii=False)}" for n, a in calls)


def parse_tool_calls(text: str, tool_format: str = "default") -> list[tuple[str, str]] | None:
    """Tool calls in generated text → [(name, arguments_json)], or None when the text holds no valid call."""
    if tool_format == "qwen":
        found = [m.strip() for m in re.findall(r"<tool_call>(.+?)</tool_call>", text, re.DOTALL)]
        pairs = []
        for body in found:
            try:
                call = json.loads(body)
                pairs.append((call["name"], json.dumps(call["arguments"], ensure_ascii=False)))
            except (json.JSONDecodeError, KeyError, TypeError):
                return None
        return pairs or None
    found = re.findall(r"Action:\s*([\w.-]+)\s*Action Input:\s*(.+?)(?=\s*Action:|\s*$)", text, re.DOTALL)
    try:
        pairs = [(n, json.dumps(json.loads(a.strip().strip("`")), ensure_ascii=False)) for n, a in found]
    except json.JSONDecodeError:
        return None
    return pairs or None


def _hf_message(msg: Message, where: str) -> dict:
    if msg.role == FUNCTION:
        calls = [
            {"type": "function", "function": {"name": n, "arguments": a}} for n, a in _parse_calls(msg.content, where)
        ]
        return {"role": "assistant", "content": "", "tool_calls": calls}
    return {"role": "tool" if msg.role == OBSERVATION else msg.role, "content": msg.content}


def _single_token_id(tokenizer, word: str) -> int | None:
    ids = tokenizer.encode(word, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


def _set_eos(tokenizer, token: str) -> int:
    if tokenizer.eos_token == token:
        return 0
    return tokenizer.add_special_tokens({"eos_token": token})


def _jinja_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # JSON escapes are valid Jinja string-literal escapes


def _jinja_expr(slot: str, var: str = "content") -> str:
    """A slot as a Jinja expression: literals, the content variable, the loop turn, bos/eos variables."""
    parts = []
    for piece in _TOKEN.split(slot):
        if piece in ("{{bos_token}}", "{{eos_token}}"):
            parts.append(f"({piece[2:-2]} or '')")
            continue
        for k, chunk in enumerate(_FIELD.split(piece)):  # even k: literal text, odd k: a field name
            if k % 2 == 0 and chunk:
                parts.append(_jinja_str(chunk))
            elif k % 2 == 1:
                parts.append(var if chunk == "content" else "((loop.index0 // 2) | string)")
    return " + ".join(parts)
