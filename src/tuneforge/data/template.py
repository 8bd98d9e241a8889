"""Prompt templates by name: the definitions in templates.yaml, and `tokenizer` for the tokenizer's own
chat_template. `get_template` is the one way in; `template_for` passes a config's data keys to it."""

from __future__ import annotations

import copy
import difflib
import functools
from importlib import resources

from tuneforge.data.template_engine import Template
from tuneforge.data.tokenizer_template import TokenizerTemplate
from tuneforge.errors import UserError
from tuneforge.utils.yaml_text import load_shipped_yaml

__all__ = ["TEMPLATE_NAMES", "Template", "TokenizerTemplate", "get_template", "template_for", "template_info"]

DOC_KEYS = ("models",)  # in templates.yaml for docs/templates.md, not for the engine


@functools.cache
def _definitions() -> dict[str, dict]:
    text = resources.files("tuneforge.data").joinpath("templates.yaml").read_text(encoding="utf-8")
    defs: dict[str, dict] = {}
    for name, spec in load_shipped_yaml(text).items():
        spec = dict(spec or {})
        base = spec.pop("extends", None)
        defs[name] = {**defs[base], **spec} if base else spec
    return defs


TEMPLATE_NAMES: list[str] = [*_definitions(), "tokenizer"]


def template_info(name: str) -> dict:
    """A template's keys as templates.yaml resolves them (with `extends`), for docs and the Web UI."""
    return copy.deepcopy(_definitions()[name])


def get_template(
    name: str | None,
    tokenizer,
    *,
    tool_format: str | None = None,
    enable_thinking: bool | None = True,
    preserve_thinking: bool = False,
) -> Template:
    """A fresh Template. None → `tokenizer` when the tokenizer has a chat_template, else `default`.

    As LLaMA-Factory: `tool_format` replaces the template's tool format and writes tool calls in a plain
    `{{content}}` + EOS reply slot; `enable_thinking` / `preserve_thinking` apply to reasoning templates only."""
    chat_template = getattr(tokenizer, "chat_template", None)
    if name is None:
        name = "tokenizer" if chat_template else "default"
    if name == "tokenizer":
        if not chat_template:
            raise UserError(
                "template 'tokenizer' needs a tokenizer with a chat_template, and this one has none",
                where="template",
                fix="name a template (see docs/templates.md)",
            )
        return TokenizerTemplate(  # the thinking settings are passed to the chat_template (Qwen3 reads them)
            name="tokenizer",
            chat_template=chat_template,
            tool_format=tool_format or "default",
            enable_thinking=enable_thinking,
            preserve_thinking=preserve_thinking,
        )
    if name not in _definitions():
        close = difflib.get_close_matches(name, TEMPLATE_NAMES, n=1, cutoff=0.0)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UserError(f"unknown template '{name}'", where="template", fix=f"{hint}known: {', '.join(TEMPLATE_NAMES)}")
    spec = {k: v for k, v in copy.deepcopy(_definitions()[name]).items() if k not in DOC_KEYS}
    if tool_format is not None:  # LF's get_template_and_fix_tokenizer
        plain_reply = "{{content}}" if spec.get("efficient_eos") else "{{content}}{{eos_token}}"
        spec |= {"tool_format": tool_format, "function": plain_reply, "tools": None}
    template = Template(name=name, **spec)
    if template.is_reasoning:
        template.enable_thinking, template.preserve_thinking = enable_thinking, preserve_thinking
    return template


def template_for(data_args, tokenizer, name: str | None = None) -> Template:
    """The template a run's data settings ask for (`template`, or `name` when given; tool_format, enable_thinking,
    preserve_thinking)."""
    return get_template(
        name if name is not None else data_args.template,
        tokenizer,
        tool_format=data_args.tool_format,
        enable_thinking=data_args.enable_thinking,
        preserve_thinking=data_args.preserve_thinking,
    )
