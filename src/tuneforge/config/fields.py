"""Field metadata shared by every argument group: help text and the UI group. A field with fixed choices is typed
`Literal[...]` (or `Literal[...] | None`), and `choices(type)` reads them from there: for the loader, the Web UI's
dropdowns and docs/config.md alike."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import MISSING
from typing import Any


def opt(default: Any = None, help: str = "", **meta) -> Any:
    """A config field: its default and help text (the Web UI's tooltip, docs/config.md)."""
    metadata = {"help": help, **meta}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def choices(tp: Any) -> list | None:
    """The fixed choices of a `Literal[...]` type, None first when the type also allows None (`Literal[...] | None`);
    None for any other type."""
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    literals = [a for a in args if a is not type(None)]
    if not literals or any(typing.get_origin(a) is not typing.Literal for a in literals):
        return None
    values = [v for a in literals for v in typing.get_args(a)]
    return [None, *values] if len(literals) < len(args) else values


def field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def describe(cls) -> list[dict]:
    """Name, type, default, help and choices of each field: the data the Web UI and docs are built from."""
    hints = field_types(cls)
    out = []
    for f in dataclasses.fields(cls):
        default = (
            f.default
            if f.default is not MISSING
            else (f.default_factory() if f.default_factory is not MISSING else None)
        )
        out.append(
            {
                "name": f.name,
                "type": hints.get(f.name),
                "default": default,
                "help": f.metadata.get("help", ""),
                "choices": choices(hints.get(f.name)),
                "refused": refusal(f),
            }
        )
    return out


def refusal(f: dataclasses.Field) -> tuple[str, str] | None:
    """(why, fix) of a key this version refuses when set away from its default (`opt(..., refused=(why, fix))`):
    a LLaMA-Factory key we know and document but cannot honour here. None for a key that takes effect."""
    return f.metadata.get("refused")
