"""The template engine: one chat format (slots from templates.yaml) turns a Conversation into token ids.

It follows LLaMA-Factory 0.9.5's Template / Llama2Template / ReasoningTemplate / Glm47ReasoningTemplate token for
token. A slot is a list of elements, each encoded on its own with add_special_tokens=False: a text (with
{{content}} / {{idx}}), a `{token: X}` (X's id, one id), `{{bos_token}}` / `{{eos_token}}` (the tokenizer's id, left
out when it has none). The compact string form "a{{content}}{{eos_token}}" is the list ["a{{content}}", EOS].
"""

from __future__ import annotations

import dataclasses
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
from tuneforge.data.tool_formats import FunctionCall, calls_from_json, get_tool_format, tools_from_json
from tuneforge.errors import UserError

KINDS = ("plain", "reasoning", "llama2", "glm47_reasoning")
REASONING_KINDS = ("reasoning", "glm47_reasoning")
DEFAULT_THOUGHT_WORDS = ("<think>\n", "\n</think>\n\n")
DEFAULT_TOOL_CALL_WORDS = ("<tool_call>", "</tool_call>")
_SPECIAL = re.compile(r"(\{\{(?:bos_token|eos_token)\}\})")  # split keeps the placeholder
BOS, EOS = "{{bos_token}}", "{{eos_token}}"


@dataclass(frozen=True)
class Token:
    """A slot element that is one token id: `tokenizer.convert_tokens_to_ids(text)` (LF's {"token": X})."""

    text: str


def compile_slot(slot: Any) -> tuple:
    """A slot as written in templates.yaml (a string, or a list of strings and {token: X}) → its elements:
    strings (text with placeholders), Token, BOS, EOS."""
    pieces = [slot] if isinstance(slot, str) else list(slot or [])
    out: list = []
    for piece in pieces:
        if isinstance(piece, dict):
            out.append(Token(piece["token"]))
        elif isinstance(piece, Token):
            out.append(piece)
        else:
            out += [p for p in _SPECIAL.split(piece) if p]
    return tuple(out)


@dataclass
class Template:
    """One chat format: LF's registered template as data (see templates.yaml for the keys)."""

    name: str
    kind: str = "plain"
    prefix: Any = ""
    system: Any = "{{content}}"
    user: Any = "{{content}}"
    assistant: Any = None
    observation: Any = None
    function: Any = None
    tools: Any = None  # a slot for the raw tools JSON instead of the tool format's prompt (phi4_mini)
    tool_format: str = "default"
    default_system: str = ""
    stop_words: list[str] = field(default_factory=list)
    thought_words: tuple[str, str] = DEFAULT_THOUGHT_WORDS
    tool_call_words: tuple[str, str] = DEFAULT_TOOL_CALL_WORDS
    efficient_eos: bool = False
    replace_eos: bool = False
    replace_jinja_template: bool = False
    enable_thinking: bool | None = True
    preserve_thinking: bool = False
    mm_plugin: dict | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"template {self.name}: kind must be one of {KINDS}, not {self.kind!r}")
        if self.assistant is None:
            self.assistant = "{{content}}" if self.efficient_eos else "{{content}}{{eos_token}}"
        self.observation = self.observation or self.user
        self.function = self.function or self.assistant
        self.thought_words = tuple(self.thought_words)
        self.tool_call_words = tuple(self.tool_call_words)
        self.formatter = get_tool_format(self.tool_format)  # an unknown name fails here, naming the known ones
        self._slots = {
            k: compile_slot(getattr(self, k))
            for k in ("prefix", "system", "user", "assistant", "observation", "function", "tools")
        }
        if self.kind == "llama2" and not isinstance(self._slots["system"][0], str):
            raise ValueError(f"template {self.name}: a system slot put inside the user turn must start with text")

    @property
    def system_in_user(self) -> bool:
        """LF's Llama2Template: the formatted system text opens the first user turn."""
        return self.kind == "llama2"

    @property
    def is_reasoning(self) -> bool:
        return self.kind in REASONING_KINDS

    # ---- thoughts ---------------------------------------------------------------------------------------------
    def add_thought(self, content: str = "") -> str:
        """The thought words around nothing, before `content` (GLM-4.7: only the closing word when empty)."""
        if self.kind == "glm47_reasoning":
            return self.thought_words[1] if not content else self.thought_words[0] + content + self.thought_words[1]
        return self.thought_words[0] + self.thought_words[1] + content

    def remove_thought(self, content: str) -> str:
        start, end = (re.escape(w) for w in self.thought_words)
        return re.sub(f"{start}(.*?){end}", "", content, flags=re.DOTALL).lstrip("\n")

    def _has_thought(self, content: str) -> bool:
        return self.thought_words[0].strip() in content or self.thought_words[1].strip() in content

    def _thought_ids(self, tokenizer) -> list[int]:
        return tokenizer.encode(self.add_thought(), add_special_tokens=False)

    # ---- encoding -------------------------------------------------------------------------------------------
    def encode_multiturn(
        self, tokenizer, conv: Conversation, default_system: str | None = None, *, discard_history_thoughts=False
    ) -> list[tuple[list[int], list[int]]]:
        """(prompt_ids, response_ids) per turn pair (a trailing prompt without a reply is left out). A reasoning
        template drops thoughts with enable_thinking False and puts an empty thought before replies without one:
        in the prompt (not trained) unless enable_thinking is True. `discard_history_thoughts` (SFT's mask_history
        without preserve_thinking) drops the thoughts of all but the last reply."""
        _check_roles(conv)
        messages = self._lf_messages(conv)
        messages = messages[: len(messages) // 2 * 2]
        if not messages:
            return []
        if self.is_reasoning:
            if self.enable_thinking is False:
                messages = [self._without_thought(m) if i % 2 else m for i, m in enumerate(messages)]
            if discard_history_thoughts:
                n = len(messages)
                messages = [self._without_thought(m) if i % 2 and i < n - 2 else m for i, m in enumerate(messages)]
        encoded = self._encode_messages(tokenizer, dataclasses.replace(conv, messages=messages), default_system)
        if self.is_reasoning:
            turns = [len(messages) - 2] if discard_history_thoughts else range(0, len(messages), 2)
            for i in turns:
                if not self._has_thought(messages[i + 1].content):
                    if not self.enable_thinking:
                        encoded[i] = encoded[i] + self._thought_ids(tokenizer)
                    else:
                        encoded[i + 1] = self._thought_ids(tokenizer) + encoded[i + 1]
        return [(encoded[i], encoded[i + 1]) for i in range(0, len(encoded) - 1, 2)]

    def encode_oneturn(
        self, tokenizer, conv: Conversation, default_system: str | None = None
    ) -> tuple[list[int], list[int]]:
        """(prompt_ids, response_ids): everything before the last message, and the last message (a reply). A
        reasoning template drops the thoughts of earlier replies unless preserve_thinking."""
        messages = self._lf_messages(conv)
        if self.is_reasoning:
            if not self.preserve_thinking:
                n = len(messages)
                messages = [self._without_thought(m) if i % 2 and i < n - 2 else m for i, m in enumerate(messages)]
            if self.enable_thinking is False:
                messages[-1] = self._without_thought(messages[-1])
        encoded = self._encode_messages(tokenizer, dataclasses.replace(conv, messages=messages), default_system)
        prompt = [i for ids in encoded[:-1] for i in ids]
        response = encoded[-1]
        if self.is_reasoning and not self._has_thought(messages[-1].content):
            if not self.enable_thinking:
                prompt += self._thought_ids(tokenizer)
            else:
                response = self._thought_ids(tokenizer) + response
        return prompt, response

    def encode_prompt(self, tokenizer, conv: Conversation, default_system: str | None = None) -> list[int]:
        """Ids for generation, as LF's chat engine: the conversation plus an empty reply, through encode_oneturn
        (a reasoning template with enable_thinking off ends the prompt with the empty thought)."""
        if not conv.messages or conv.messages[-1].role not in PROMPT_ROLES:
            msg = "a prompt for generation must end with a user or observation turn"
            raise UserError(msg, where=conv.source or None)
        if not self.is_reasoning:  # the same ids: a message's ids never depend on the ones after it
            conv = dataclasses.replace(conv, messages=self._lf_messages(conv))
            return [i for ids in self._encode_messages(tokenizer, conv, default_system) for i in ids]
        paired = dataclasses.replace(conv, messages=[*conv.messages, Message(ASSISTANT, "")])
        return self.encode_oneturn(tokenizer, paired, default_system)[0]

    def render(self, tokenizer, conv: Conversation, default_system: str | None = None) -> str:
        """The text the model sees, special tokens included: the decode of encode_multiturn, or of encode_prompt
        when the conversation ends with a prompt."""
        if conv.messages and conv.messages[-1].role in PROMPT_ROLES:
            ids = self.encode_prompt(tokenizer, conv, default_system)
        else:
            ids = [i for p, r in self.encode_multiturn(tokenizer, conv, default_system) for i in p + r]
        return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def extract_tool(self, text: str) -> str | list[FunctionCall]:
        """The tool calls in generated text, or the text itself when there are none."""
        return self.formatter.extract(text)

    def _lf_messages(self, conv: Conversation) -> list[Message]:
        """The messages as LF sees them: a reply's separate `reasoning` goes inside the thought words, before its
        content."""
        if not any(m.reasoning for m in conv.messages):
            return list(conv.messages)
        start, end = self.thought_words
        return [
            Message(m.role, start + m.reasoning.strip("\n") + end + m.content.lstrip("\n")) if m.reasoning else m
            for m in conv.messages
        ]

    def _without_thought(self, msg: Message) -> Message:
        return Message(msg.role, self.remove_thought(msg.content))

    def _encode_messages(self, tokenizer, conv: Conversation, default_system: str | None) -> list[list[int]]:
        """Ids per message (LF's Template._encode): message 0 also carries the prefix and the system prompt with
        the tools' text; `conv.messages` are LF messages already (thoughts placed, see _lf_messages)."""
        _check_roles(conv)
        system = conv.system or (self.default_system if default_system is None else default_system)
        slots, llama2 = self._slots, self.kind == "llama2"
        out = []
        for i, msg in enumerate(conv.messages):
            ids, system_text = [], ""
            if i == 0:
                ids += _slot_ids(tokenizer, slots["prefix"])
                if system or conv.tools:
                    text = system + (self._tool_text(conv.tools, conv.source) if conv.tools else "")
                    if llama2:  # LF keeps the first element only, as text inside the user turn
                        system_text = _fill(slots["system"][0], text)
                    else:
                        ids += _slot_ids(tokenizer, slots["system"], text)
            if msg.role == USER:
                ids += _slot_ids(tokenizer, slots["user"], system_text + msg.content, None if llama2 else str(i // 2))
            elif msg.role == ASSISTANT:
                ids += _slot_ids(tokenizer, slots["assistant"], msg.content)
            elif msg.role == OBSERVATION:
                ids += _slot_ids(tokenizer, slots["observation"], msg.content)
            else:
                ids += _slot_ids(
                    tokenizer, slots["function"], self._function_text(msg.content, conv.source, bare=llama2)
                )
            out.append(ids)
        return out

    def _tool_text(self, tools_json: str, where: str) -> str:
        """LF's format_tools: the tool format's prompt, or the tools slot filled with the raw JSON (phi4_mini)."""
        if self._slots["tools"]:
            return _fill(self._slots["tools"][0], tools_json)
        return self.formatter.tool_prompt(tools_from_json(tools_json, where or None))

    def _function_text(self, content: str, where: str, bare: bool) -> str:
        """LF's FunctionFormatter: the calls (JSON) written in the tool format. Thought words before the JSON stay
        in front; with tool-call words the text around the first call stays in front (not for llama2 kinds)."""
        if not bare:
            open_, close = (re.escape(w) for w in self.tool_call_words)
            call = re.search(f"{open_}(.*?){close}", content, re.DOTALL)
            if call is not None:
                calls = calls_from_json(call.group(1), where or None)
                return content.replace(call.group(0), "") + self.formatter.function_text(calls)
            start, end = (re.escape(w) for w in self.thought_words)
            thought = re.search(f"{start}(.*?){end}", content, re.DOTALL)
            if thought is not None:
                calls = calls_from_json(content.replace(thought.group(0), ""), where or None)
                return thought.group(0) + self.formatter.function_text(calls)
        return self.formatter.function_text(calls_from_json(content, where or None))

    # ---- generation and tokenizer -----------------------------------------------------------------------------
    def stop_token_ids(self, tokenizer) -> list[int]:
        """EOS plus the stop words that are single tokens of this tokenizer, for generation."""
        ids = [tokenizer.eos_token_id] + [_single_token_id(tokenizer, w) for w in self.stop_words]
        return list(dict.fromkeys(i for i in ids if i is not None))

    def fix_tokenizer(self, tokenizer) -> int:
        """Fit the tokenizer to the template, in place, like LF's fix_special_tokens: with replace_eos the first
        stop word becomes EOS; a tokenizer without EOS gets `<|endoftext|>`; without pad, pad = EOS; the other stop
        words become special tokens. Returns how many tokens were ADDED to the vocabulary: when > 0 the model's
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
        and tool (observation) messages (LF's _get_jinja_template, plus tool messages and {token} elements written
        as their text). Tools, tool calls and thoughts are not rewritten; a reasoning template with enable_thinking
        off adds its empty thought with add_generation_prompt; efficient_eos's final EOS is not added."""

        def out(expr: str) -> str:
            return "{{ " + expr + " }}" if expr else ""

        slots = self._slots
        system_text = _jinja_expr(slots["system"], "system_message")
        j = (
            "{% if messages and messages[0]['role'] == 'system' %}"
            "{% set system_message = messages[0]['content'] or " + _jinja_str(self.default_system) + " %}"
            "{% set loop_messages = messages[1:] %}"
            "{% else %}{% set system_message = " + _jinja_str(self.default_system) + " %}"
            "{% set loop_messages = messages %}{% endif %}" + out(_jinja_expr(slots["prefix"]))
        )
        if not self.system_in_user:
            j += "{% if system_message %}" + out(system_text) + "{% endif %}"
        j += "{% for message in loop_messages %}{% set content = message['content'] %}"
        if self.system_in_user:
            first = _jinja_expr(slots["system"][:1], "system_message")
            j += "{% if loop.first and system_message %}{% set content = " + first + " + content %}{% endif %}"
        j += (
            "{% if message['role'] == 'user' %}" + out(_jinja_expr(slots["user"])) + ""
            "{% elif message['role'] == 'assistant' %}" + out(_jinja_expr(slots["assistant"])) + ""
            "{% elif message['role'] in ['tool', 'observation'] %}" + out(_jinja_expr(slots["observation"])) + ""
            "{% endif %}{% endfor %}"
        )
        if self.is_reasoning and not self.enable_thinking:
            j += "{% if add_generation_prompt %}" + out(_jinja_str(self.add_thought())) + "{% endif %}"
        return j

    def slot_text(self, name: str) -> str:
        """A slot as one string in the compact form ({token} elements written as their text), for exports."""
        return "".join(p.text if isinstance(p, Token) else p for p in self._slots[name])


# ---- helpers ------------------------------------------------------------------------------------------------------
def _fill(text: str, content: str, idx: str | None = None) -> str:
    """LF's StringFormatter: the first {{content}}, then the first {{idx}} (user turns only)."""
    text = text.replace("{{content}}", content, 1)
    return text if idx is None else text.replace("{{idx}}", idx, 1)


def _slot_ids(tokenizer, slot: tuple, content: str = "", idx: str | None = None) -> list[int]:
    """LF's _convert_elements_to_ids: each element on its own."""
    ids: list[int] = []
    for piece in slot:
        if piece == BOS:
            ids += [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
        elif piece == EOS:
            ids += [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
        elif isinstance(piece, Token):
            if (tid := tokenizer.convert_tokens_to_ids(piece.text)) is None:
                raise UserError(
                    f"the template needs the token {piece.text!r}, which this tokenizer lacks",
                    where="template",
                    fix="use the model's own tokenizer, or a template made for this model",
                )
            ids.append(tid)
        elif text := _fill(piece, content, idx):
            ids += tokenizer.encode(text, add_special_tokens=False)
    return ids


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


def _hf_message(msg: Message, where: str) -> dict:
    if msg.role == FUNCTION:
        calls = [
            {"type": "function", "function": {"name": n, "arguments": json.loads(a)}}
            for n, a in calls_from_json(msg.content, where or None)
        ]
        return {"role": "assistant", "content": "", "tool_calls": calls}
    out = {"role": "tool" if msg.role == OBSERVATION else msg.role, "content": msg.content}
    if msg.reasoning:
        out["reasoning_content"] = msg.reasoning
    return out


def _single_token_id(tokenizer, word: str) -> int | None:
    ids = tokenizer.encode(word, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


def _set_eos(tokenizer, token: str) -> int:
    if tokenizer.eos_token == token:
        return 0
    return tokenizer.add_special_tokens({"eos_token": token})


def _jinja_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # JSON escapes are valid Jinja string-literal escapes


_FIELD = re.compile(r"\{\{(content|idx)\}\}")


def _jinja_expr(slot: tuple, var: str = "content") -> str:
    """A compiled slot as a Jinja expression: literals, the content variable, the loop turn, bos/eos variables."""
    parts = []
    for piece in slot:
        if isinstance(piece, Token):
            parts.append(_jinja_str(piece.text))
        elif piece in (BOS, EOS):
            parts.append(f"({piece[2:-2]} or '')")
        else:
            for k, chunk in enumerate(_FIELD.split(piece)):  # even k: literal text, odd k: a field name
                if k % 2 == 0 and chunk:
                    parts.append(_jinja_str(chunk))
                elif k % 2 == 1:
                    parts.append(var if chunk == "content" else "((loop.index0 // 2) | string)")
    return " + ".join(parts)
