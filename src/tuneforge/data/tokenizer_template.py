"""`template: tokenizer`: the tokenizer's own chat_template (Jinja) used as our template."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuneforge.data.conversation import ASSISTANT, PROMPT_ROLES, USER, Conversation, Message
from tuneforge.data.template_engine import Template, _check_roles, _hf_message, _load_json
from tuneforge.errors import UserError

NAMED_FIX = "set `template:` to a named template (see docs/templates.md)"


@dataclass
class TokenizerTemplate(Template):
    """The tokenizer's own chat_template. Per-message segments come from rendering growing prefixes of the
    conversation (prompts with add_generation_prompt=True) and taking the new text; each segment is then encoded
    on its own. A chat_template that rewrites earlier text when a message is added is refused."""

    chat_template: Any = None

    def _encode_messages(self, tokenizer, conv: Conversation, default_system: str | None) -> list[list[int]]:
        _check_roles(conv)
        system = conv.system or default_system or ""
        head = [{"role": "system", "content": system}] if system else []
        msgs = head + [_hf_message(m, conv.source) for m in conv.messages]
        tools = _load_json(conv.tools, conv.source, "tools") if conv.tools else None
        out, prev = [], ""
        for i, msg in enumerate(conv.messages):
            gen = msg.role in PROMPT_ROLES
            try:
                text = tokenizer.apply_chat_template(
                    msgs[: len(head) + i + 1], tools=tools, add_generation_prompt=gen, tokenize=False
                )
            except Exception as e:  # jinja errors, raise_exception(...) in the template
                raise UserError(
                    f"the tokenizer's chat_template failed: {e}", where=conv.source or "template", fix=NAMED_FIX
                ) from e
            if not text.startswith(prev):
                raise UserError(
                    f"the tokenizer's chat_template is not prefix-stable: adding message {i} ({msg.role}) "
                    "changes the text rendered before it, so turns cannot be split for training",
                    where="template: tokenizer",
                    fix=NAMED_FIX,
                )
            out.append(tokenizer.encode(text[len(prev) :], add_special_tokens=False))
            prev = text
        return out

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
