"""Prompt templates by name: the definitions in templates.yaml, and `tokenizer` for the tokenizer's own
chat_template. `get_template` is the one way in."""

from __future__ import annotations

import copy
import difflib
import functools
from importlib import resources

import yaml

from tuneforge.data.template_engine import Template, parse_tool_calls
from tuneforge.data.tokenizer_template import TokenizerTemplate
from tuneforge.errors import UserError

__all__ = ["TEMPLATE_NAMES", "Template", "TokenizerTemplate", "get_template", "parse_tool_calls"]


@functools.cache
def _definitions() -> dict[str, dict]:
    text = resources.files("tuneforge.data").joinpath("templates.yaml").read_text(encoding="utf-8")
    defs: dict[str, dict] = {}
    for name, spec in yaml.safe_load(text).items():
        spec = dict(spec or {})
        base = spec.pop("extends", None)
        defs[name] = {**defs[base], **spec} if base else spec
    return defs


TEMPLATE_NAMES: list[str] = [*_definitions(), "tokenizer"]


def get_template(name: str | None, tokenizer) -> Template:
    """A fresh Template. None → `tokenizer` when the tokenizer has a chat_template, else `default`."""
    chat_template = getattr(tokenizer, "chat_template", None)
    if name is None:
        name = "tokenizer" if chat_template else "default"
    if name == "tokenizer":
        if not chat_template:
            raise UserError(
                "template 'tokenizer' needs a tokenizer with a chat_template, and this one has none",
                where="template",
                fix=f"name a template: {', '.join(TEMPLATE_NAMES[:-1])}",
            )
        return TokenizerTemplate(name="tokenizer", chat_template=chat_template)
    if name not in _definitions():
        close = difflib.get_close_matches(name, TEMPLATE_NAMES, n=1, cutoff=0.0)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UserError(f"unknown template '{name}'", where="template", fix=f"{hint}known: {', '.join(TEMPLATE_NAMES)}")
    return Template(name=name, **copy.deepcopy(_definitions()[name]))
