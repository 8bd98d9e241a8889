"""`template: tokenizer`: the tokenizer's own chat_template (Jinja) used as our template.

A conversation is cut into per-message segments (prompt, reply, prompt, reply, ...), each encoded on its own:
1. a prefix-stable template (adding a message never changes the text before it): growing prefixes of the
   conversation are rendered and each message's segment is the new text;
2. a template that rewrites history (Qwen3 drops the thinking of replies before the last user query): the whole
   conversation is rendered once and each reply is found in it (`_Renderer.found_segments`), or taken from the
   template's `{% generation %}` marks when it has them (`_Renderer.generation_segments`).
`enable_thinking` and `preserve_thinking` are passed to the template (Qwen3 reads the first, Qwen3.6 both).
Tool calls go to it as OpenAI `tool_calls` (ids `call00001`, ...; arguments as an object or JSON text, whichever it
writes); a template that writes no tool calls is refused in one line. Checked against 50 official templates by
tests/unit/test_tokenizer_template_official.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tuneforge.data.conversation import ASSISTANT, PROMPT_ROLES, USER, Conversation, Message
from tuneforge.data.template_engine import Template, _check_roles, _hf_message, _load_json
from tuneforge.errors import UserError

NAMED_FIX = "set `template:` to a named template (see docs/templates.md)"
_SENTINEL = "TUNEFORGE_REPLY_SENTINEL"
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_GENERATION_MARK = re.compile(r"\{%-?\s*generation\s*-?%\}")
_THINKING_FIELD = re.compile(r"""message(\.thinking\b|\[['"]thinking['"]\])""")
_AFTER_REPLY: dict[tuple, tuple[str, str, str]] = {}


def has_thinking(msg: Message) -> bool:
    """Whether a reply carries thinking: a `reasoning` field or a <think> / </think> tag in its content."""
    return bool(msg.reasoning) or "<think>" in msg.content or "</think>" in msg.content


@dataclass
class TokenizerTemplate(Template):
    """The tokenizer's own chat_template, with the Template interface (see the module docstring)."""

    chat_template: Any = None

    def __post_init__(self):
        super().__post_init__()
        # "reasoning" tells chat / preview that replies start with a think block; the Jinja does the rest
        self.kind = "reasoning" if "<think>" in str(self.chat_template or "") else "plain"

    # ---- encoding: the Jinja places the thinking, so LF's thought rules of Template do not apply --------------
    def encode_multiturn(
        self, tokenizer, conv: Conversation, default_system: str | None = None, *, discard_history_thoughts=False
    ) -> list[tuple[list[int], list[int]]]:
        """(prompt_ids, response_ids) per turn pair. `discard_history_thoughts` is the template's own business
        here (Qwen3's drops the thinking of history replies anyway), so it is ignored."""
        segments = self._encode_messages(tokenizer, conv, default_system)
        return [(segments[i], segments[i + 1]) for i in range(0, len(segments) - 1, 2)]

    def encode_oneturn(self, tokenizer, conv: Conversation, default_system: str | None = None):
        """(prompt_ids, response_ids): everything before the last message, and the last message."""
        segments = self._encode_messages(tokenizer, conv, default_system)
        return [i for seg in segments[:-1] for i in seg], segments[-1]

    def encode_prompt(self, tokenizer, conv: Conversation, default_system: str | None = None) -> list[int]:
        """Ids for generation: the conversation with the template's generation prompt (enable_thinking passed)."""
        if not conv.messages or conv.messages[-1].role not in PROMPT_ROLES:
            msg = "a prompt for generation must end with a user or observation turn"
            raise UserError(msg, where=conv.source or None)
        return [i for seg in self._encode_messages(tokenizer, conv, default_system) for i in seg]

    def _encode_messages(self, tokenizer, conv: Conversation, default_system: str | None) -> list[list[int]]:
        _check_roles(conv)
        system = conv.system or default_system or ""
        head = [{"role": "system", "content": system}] if system else []
        messages = self._thinking_applied(conv.messages)
        msgs = _with_call_ids(head + [self._hf(m, conv.source) for m in messages])
        tools = _load_json(conv.tools, conv.source, "tools") if conv.tools else None
        render = _Renderer(self, tokenizer, conv, head, msgs, tools, messages)
        if any("tool_calls" in m for m in msgs):
            render.fit_tool_calls()
        texts = render.grown_segments()
        if texts is None and _GENERATION_MARK.search(str(self.chat_template)):
            return render.generation_segments()
        if texts is None:
            texts = render.found_segments()
        return [tokenizer.encode(t, add_special_tokens=False) if t else [] for t in texts]

    def _thinking_applied(self, messages: list[Message]) -> list[Message]:
        """enable_thinking: false trains no thinking: every reply loses its reasoning and <think> blocks."""
        if self.enable_thinking is not False:
            return messages
        return [Message(m.role, _THINK_BLOCK.sub("", m.content).lstrip("\n")) for m in messages]

    def _hf(self, msg: Message, where: str) -> dict:
        """A Message as the template reads it: the thinking in `reasoning_content` (Qwen3, GLM, Gemma 4, Seed-OSS)
        or `thinking` (gpt-oss) when the template reads that field, else in the content inside the thought words."""
        out = _hf_message(msg, where)
        out.pop("reasoning_content", None)
        if msg.reasoning:
            if "reasoning_content" in str(self.chat_template):
                out["reasoning_content"] = msg.reasoning
            elif _THINKING_FIELD.search(str(self.chat_template)):
                out["thinking"] = msg.reasoning
            else:
                opening, closing = self.thought_words
                out["content"] = opening + msg.reasoning.strip("\n") + closing + out["content"].lstrip("\n")
        return out

    def template_kwargs(self, thinking: bool) -> dict:
        """Extra variables for the chat_template. With enable_thinking: null (mixed data) a reply with thinking is
        prompted as thinking-on and one without as thinking-off (LLaMA-Factory's rule for mixed data)."""
        enable = thinking if self.enable_thinking is None else self.enable_thinking
        return {"enable_thinking": bool(enable), "preserve_thinking": bool(self.preserve_thinking)}

    # ---- generation and tokenizer -----------------------------------------------------------------------------
    def stop_token_ids(self, tokenizer) -> list[int]:
        """EOS plus the special tokens that close a reply in this chat_template (e.g. `<|eot_id|>`)."""
        probe = Conversation([Message(USER, "x"), Message(ASSISTANT, "y")])
        special = set(tokenizer.all_special_ids)
        ids = [tokenizer.eos_token_id] + [i for i in self.encode_multiturn(tokenizer, probe)[0][1] if i in special]
        return list(dict.fromkeys(i for i in ids if i is not None))

    def fix_tokenizer(self, tokenizer) -> int:
        """Only pad = EOS when the tokenizer has no pad token; adds nothing (returns 0)."""
        if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
            tokenizer.pad_token = tokenizer.eos_token
        return 0

    def to_jinja(self) -> str:
        return self.chat_template


class _Renderer:
    """Renders one conversation with the chat_template and cuts it into per-message segments."""

    def __init__(self, template: TokenizerTemplate, tokenizer, conv, head, msgs, tools, messages):
        self.template, self.tokenizer, self.conv = template, tokenizer, conv
        self.head, self.msgs, self.tools, self.messages = head, msgs, tools, messages

    def text(self, n: int, generation: bool, kwargs: dict) -> str:
        """The rendering of the first n conversation messages (after the system head)."""
        try:
            return self.tokenizer.apply_chat_template(
                self.msgs[: len(self.head) + n],
                tools=self.tools,
                add_generation_prompt=generation,
                tokenize=False,
                **kwargs,
            )
        except Exception as e:  # jinja errors, raise_exception(...) in the template
            raise UserError(
                f"the tokenizer's chat_template failed: {e}", where=self.conv.source or "template", fix=NAMED_FIX
            ) from e

    def fit_tool_calls(self) -> None:
        """Templates read a tool call in one of a few OpenAI dialects: arguments as an object or as JSON text
        (DeepSeek), content "" or None (DeepSeek-V3 writes the calls only when the content is none). The first
        dialect whose rendering (without the tool list, which names the functions too) writes every called
        function's name is kept; a template that writes none in any dialect cannot train tool calls."""
        names = {call["function"]["name"] for m in self.msgs for call in m.get("tool_calls", [])}
        error = None
        for text_arguments, no_content in ((False, False), (True, False), (False, True), (True, True)):
            msgs = [_call_dialect(m, text_arguments, no_content) for m in self.msgs]
            try:
                rendered = self.tokenizer.apply_chat_template(msgs, tokenize=False, **self.kwargs(len(self.messages)))
            except Exception as e:  # jinja errors, raise_exception(...) in the template
                error = e if error is None and not (text_arguments or no_content) else error
                continue
            if all(name in rendered for name in names):
                self.msgs = msgs
                return
        if error is not None and not isinstance(error, TypeError):  # the template refuses the roles (Gemma 3)
            raise UserError(
                f"the tokenizer's chat_template failed: {error}", where=self.conv.source or "template", fix=NAMED_FIX
            )
        raise UserError(
            "the tokenizer's chat_template does not write tool calls (function turns), so they cannot be trained",
            where=self.conv.source or "template: tokenizer",
            fix=NAMED_FIX,
        )

    def kwargs(self, i: int) -> dict:
        """The template's variables for prompting reply i (enable_thinking: null looks at the reply)."""
        return self.template.template_kwargs(i < len(self.messages) and has_thinking(self.messages[i]))

    def grown_segments(self) -> list[str] | None:
        """Segments from growing prefixes; None when the template is not prefix-stable."""
        out, prev = [], ""
        for i, msg in enumerate(self.messages):
            gen = msg.role in PROMPT_ROLES
            text = self.text(i + 1, gen, self.kwargs(i + 1 if gen else i))
            if not text.startswith(prev):
                return None
            out.append(text[len(prev) :])
            prev = text
        return out

    def found_segments(self) -> list[str]:
        """The whole conversation rendered once; reply i runs from where the generation prompt after message i-1
        ends to the end of the text a template writes after a reply (learnt from a probe, e.g. `<|im_end|>\\n`)."""
        n, ends_with_prompt = len(self.messages), self.messages[-1].role in PROMPT_ROLES
        last_reply = n - 2 if ends_with_prompt else n - 1
        full = self.text(n, ends_with_prompt, self.kwargs(n if ends_with_prompt else last_reply))
        after_reply = self._after_reply_text()
        out, pos = [], 0
        for i in range(1, n, 2):  # replies sit at odd positions
            start = self._prompt_end(full, i, pos)
            end = self._reply_end(full, start, i, after_reply, last=i == last_reply)
            out += [full[pos:start], full[start:end]]
            pos = end
        if ends_with_prompt:
            out.append(full[pos:])
        return out

    def _prompt_end(self, full: str, i: int, pos: int) -> int:
        """Where reply i starts in `full` (at or after `pos`, the end of the reply before): where the generation
        prompt for messages[:i] ends when it is a prefix of `full`. A history reply that Qwen3 renders without the
        empty think block of enable_thinking: false is split where the thinking-on generation prompt ends. When the
        template rewrites text before reply i too (Qwen3 drops the thinking of a tool-calling reply once a later
        user query follows), the reply starts after the first reply header (what the generation prompt adds)
        after `pos` — the generation prompt's, or the one the template writes before a history reply (Qwen3.5 and
        DeepSeek-R1 end their generation prompt with `<think>\\n`, which history replies lack): it is trained in the
        whole conversation's rendering."""
        kwargs = self.kwargs(i)
        variants = [kwargs] + ([] if kwargs["enable_thinking"] else [{**kwargs, "enable_thinking": True}])
        headers = set()
        for variables in variants:
            prompt = self.text(i, True, variables)
            if full.startswith(prompt) and len(prompt) >= pos:
                return len(prompt)
            before = self.text(i, False, variables)
            if prompt.startswith(before) and len(prompt) > len(before):
                headers.add(prompt[len(before) :])
        headers.add(self._after_reply_text()[2])  # how the template opens a reply in history
        found = [(at, -len(h)) for h in headers if h.strip() and (at := full.find(h, pos)) >= 0]
        content = self.msgs[len(self.head) + i - 1].get("content") or ""
        if not found and isinstance(content, str) and content and content in prompt:  # no reply header (Mistral)
            closing = content + prompt[prompt.rfind(content) + len(content) :]  # e.g. `...?[/INST]`
            if (at := full.find(closing, pos)) >= 0 and closing != content:
                found = [(at, -len(closing))]
        if not found:
            raise self._unstable(i, "the generation prompt for it is not in the text before it")
        at, minus_length = min(found)  # the first header; the longest of those starting there
        return at - minus_length

    def _reply_end(self, full: str, start: int, i: int, after_reply: tuple[str, str, str], last: bool) -> int:
        """The end of reply i: after the first end-of-reply text that follows the reply's own visible answer. A
        template that writes nothing after a reply (GLM-4.5) ends it where the next user turn starts, or at the
        end of the rendering for the last reply."""
        msg = self.messages[i]
        answer = _THINK_BLOCK.sub("", msg.content).strip() if msg.role == ASSISTANT else ""  # tool calls: rendered
        seen = full.find(answer, start) if answer else start
        if seen < 0:
            raise self._unstable(i, "its text is not after the reply header found for it")
        end_text, next_turn, _, history_end = after_reply
        if not end_text and not last:  # GLM, gpt-oss: the reply's own rendering, or its end in history (`<|end|>`)
            own = self.text(i + 1, False, self.kwargs(i))
            if full.startswith(own) and len(own) >= seen + len(answer):
                return len(own)
            found = full.find(history_end, seen + len(answer)) if history_end else -1
            if found >= 0:
                return found + len(history_end)
        found = full.find(end_text or next_turn, seen + len(answer))
        if found >= 0 and (end_text or not last):
            return found + len(end_text)
        if last and not end_text:
            return len(full)
        raise self._unstable(i, f"its end ({end_text or next_turn!r}) was not found")

    def _after_reply_text(self) -> tuple[str, str, str, str]:
        """(end of a reply, text from a reply's answer to the next user message, the header of a history reply,
        the end of a history reply when a last reply ends otherwise): the first is what the template writes after a
        reply whether it is the last message or a user turn follows (e.g. `<|im_end|>\\n`), cut at a line or tag
        end; the last is set when that is empty but the last reply has an end of its own (gpt-oss: `<|return|>`
        last, `<|end|>` in history). Probed with sentinel replies once per template, system prompt and settings
        (kept in _AFTER_REPLY), not per sample."""
        head, tok = self.head, self.tokenizer
        key = (str(self.template.chat_template), str(head), str(self.template.template_kwargs(True)))
        key += (tok.bos_token, tok.eos_token, tok.pad_token)
        if key not in _AFTER_REPLY:
            if len(_AFTER_REPLY) > 256:
                _AFTER_REPLY.clear()
            _AFTER_REPLY[key] = self._probe_after_reply()
        return _AFTER_REPLY[key]

    def _probe_after_reply(self) -> tuple[str, str, str, str]:
        head, kwargs = self.head, self.template.template_kwargs(True)
        probe = [*head, {"role": "user", "content": "x"}, {"role": "assistant", "content": _SENTINEL}]
        renderer = _Renderer(self.template, self.tokenizer, self.conv, head, probe, None, [])
        before_reply = renderer.text(1, False, kwargs)
        tails, header = [], ""
        for extra in ([], [{"role": "user", "content": _SENTINEL + "2"}]):
            renderer = _Renderer(self.template, self.tokenizer, self.conv, head, probe + extra, None, [])
            text = renderer.text(len(probe) + len(extra) - len(head), False, kwargs)
            at = text.find(_SENTINEL)
            tails.append(text[at + len(_SENTINEL) :] if at >= 0 else "")
            if extra and at >= 0 and text.startswith(before_reply):
                header = text[len(before_reply) : at]
        last, followed = tails
        next_turn = followed[: followed.find(_SENTINEL + "2")] if _SENTINEL + "2" in followed else ""
        common = _common_prefix(last, followed)
        if common != last:  # the two differ inside a marker (Phi-3: EOS at the very end only): cut at a line / tag
            common = common[: max(_cut_points(common), default=0)]
        if not (common or next_turn.strip()):
            raise UserError(
                "the tokenizer's chat_template is not prefix-stable and writes nothing between a reply and the next "
                "turn, so replies cannot be found in its rendering of a conversation",
                where="template: tokenizer",
                fix=NAMED_FIX,
            )
        history_end = ""
        if last and not common:
            history_end = followed[: min(_cut_points(followed), default=0)]
        return common, next_turn, header, history_end

    def generation_segments(self) -> list[list[int]]:
        """Segments from the template's {% generation %} marks (apply_chat_template's assistant mask): each run
        of marked tokens is a reply, the tokens between runs the prompts; text after the last reply is left out."""
        n, ends_with_prompt = len(self.messages), self.messages[-1].role in PROMPT_ROLES
        try:
            out = self.tokenizer.apply_chat_template(
                self.msgs,
                tools=self.tools,
                add_generation_prompt=ends_with_prompt,
                tokenize=True,
                return_dict=True,
                return_assistant_tokens_mask=True,
                **self.kwargs(n if ends_with_prompt else n - 1),
            )
        except Exception as e:
            raise UserError(
                f"the tokenizer's chat_template failed: {e}", where=self.conv.source or "template", fix=NAMED_FIX
            ) from e
        ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
        segments: list[list[int]] = [[]]
        for token, marked in zip(ids, mask, strict=True):
            if bool(marked) != (len(segments) % 2 == 0):  # odd count: in a prompt; even: in a reply
                segments.append([])
            segments[-1].append(token)
        want = n + (0 if ends_with_prompt else 1)  # a trailing prompt segment (or the text after the last reply)
        if len(segments) == want - 1:
            segments.append([])
        if len(segments) != want:
            raise UserError(
                f"the chat_template's {{% generation %}} marks cover {len(segments) // 2} replies, "
                f"the conversation has {n // 2}",
                where=self.conv.source or "template: tokenizer",
                fix=NAMED_FIX,
            )
        return segments if ends_with_prompt else segments[:-1]

    def _unstable(self, i: int, why: str) -> UserError:
        return UserError(
            f"the tokenizer's chat_template is not prefix-stable and reply {i} ({self.messages[i].role}) cannot be "
            f"found in its rendering of the whole conversation: {why}",
            where=self.conv.source or "template: tokenizer",
            fix=NAMED_FIX,
        )


def _with_call_ids(msgs: list[dict]) -> list[dict]:
    """Tool calls numbered `call00001`, ... and each tool result given the id of the first call not yet
    answered (Mistral's template requires 9-character ids; Gemma 4 finds a result's function by its id)."""
    count, pending = 0, []
    for msg in msgs:
        for call in msg.get("tool_calls", []):
            count += 1
            call["id"] = f"call{count:05d}"
            pending.append(call["id"])
        if msg["role"] == "tool" and count:
            msg["tool_call_id"] = pending.pop(0) if pending else f"call{count:05d}"
    return msgs


def _call_dialect(msg: dict, text_arguments: bool, no_content: bool) -> dict:
    if "tool_calls" not in msg:
        return msg
    calls = [
        {**c, "function": {**c["function"], "arguments": json.dumps(c["function"]["arguments"], ensure_ascii=False)}}
        if text_arguments
        else c
        for c in msg["tool_calls"]
    ]
    return {**msg, "content": None if no_content else msg["content"], "tool_calls": calls}


def _cut_points(text: str) -> list[int]:
    """Positions just after a line end or a tag end (`>`): where a template's marker text may be cut."""
    return [k + 1 for k, ch in enumerate(text) if ch in "\n>"]


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]
