"""An Ollama Modelfile for an exported GGUF: the training template as a Go template, its stop words, its system."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.data.template import Template

_TOKEN = re.compile(r"(\{\{(?:bos_token|eos_token|content|idx)\}\})")


def _go_slot(slot: str, content: str, tokenizer) -> str:
    """A template slot in Go-template syntax: literal text stays (a literal `{{` is escaped), {{content}} becomes
    the given expression, {{bos_token}} / {{eos_token}} the tokens' text (Ollama parses special tokens in it)."""
    out = []
    for piece in _TOKEN.split(slot):
        if piece == "{{content}}":
            out.append(content)
        elif piece == "{{bos_token}}":
            out.append(tokenizer.bos_token or "")
        elif piece == "{{eos_token}}":
            out.append(tokenizer.eos_token or "")
        elif piece == "{{idx}}":
            raise UserError(
                "this template numbers its turns ({{idx}}), which a Go template cannot compute",
                where="template",
                fix="export as GGUF without Ollama, or pick a template without {{idx}}",
            )
        else:
            out.append(piece.replace("{{", '{{ "{{" }}'))
    return "".join(out)


def go_template(template: Template, tokenizer) -> str:
    """Renders like Template.encode_prompt: prefix, system (own slot, or inside the first user turn), then turns."""
    system = _go_slot(template.slot_text("system"), "{{ $.System }}", tokenizer)
    text = _go_slot(template.slot_text("prefix"), "", tokenizer)
    if not template.system_in_user:
        text += "{{ if .System }}" + system + "{{ end }}"
    user_content, done = "{{ .Content }}", ""
    if template.system_in_user:  # the system text opens the first prompt turn
        text += "{{ $first := true }}"
        user_content = "{{ if and $first $.System }}" + system + "{{ end }}{{ .Content }}"
        done = "{{ $first = false }}"
    return text + (
        '{{ range .Messages }}{{ if eq .Role "user" }}'
        + _go_slot(template.slot_text("user"), user_content, tokenizer)
        + done
        + '{{ else if eq .Role "assistant" }}'
        + _go_slot(template.slot_text("assistant"), "{{ .Content }}", tokenizer)
        + done
        + '{{ else if eq .Role "tool" }}'
        + _go_slot(template.slot_text("observation"), user_content, tokenizer)
        + done
        + "{{ end }}{{ end }}"
    )


def stop_words(template: Template, tokenizer) -> list[str]:
    words = list(template.stop_words)
    words += [tokenizer.decode([i], skip_special_tokens=False) for i in template.stop_token_ids(tokenizer)]
    return list(dict.fromkeys(w for w in words if w))


def _quoted(text: str, what: str) -> str:
    if '"""' in text:
        raise UserError(f'the {what} holds """, which a Modelfile cannot quote', where="template")
    return '"""' + text + '"""'


def modelfile(template: Template, tokenizer, gguf_name: str = "model.gguf", system: str | None = None) -> str:
    lines = [f"FROM ./{gguf_name}"]
    if template.name != "tokenizer":  # a tokenizer's own Jinja template: Ollama reads it from the GGUF
        lines.append("TEMPLATE " + _quoted(go_template(template, tokenizer), "template"))
    default_system = template.default_system if system is None else system
    if default_system:
        lines.append("SYSTEM " + _quoted(default_system, "system prompt"))
    lines += [f"PARAMETER stop {json.dumps(w, ensure_ascii=False)}" for w in stop_words(template, tokenizer)]
    return "\n".join(lines) + "\n"
