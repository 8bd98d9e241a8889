"""Field metadata shared by every argument group: help text, choices, the UI group."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import MISSING
from typing import Any


def opt(default: Any = None, help: str = "", choices: list | tuple | None = None, **meta) -> Any:
    """A config field. `choices` are checked on load and become a dropdown in the Web UI."""
    metadata = {"help": help, **meta}
    if choices is not None:
        metadata["choices"] = list(choices)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


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
                "choices": f.metadata.get("choices"),
            }
        )
    return out
