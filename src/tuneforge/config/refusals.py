"""Keys we know (LLaMA-Factory's, documented in docs/config.md) but cannot honour in this version: set away from
their default, each stops the run in one line saying why and what would work. Never accepted and ignored. The
loader checks them on the keys as written, before any other check: the reason a key cannot run comes first."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from tuneforge.config.fields import refusal
from tuneforge.errors import UserError


def field_default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def refused_fields(groups: Iterable[type]) -> dict[str, dataclasses.Field]:
    """key -> field for every refused key of these argument classes."""
    return {f.name: f for cls in groups for f in dataclasses.fields(cls) if refusal(f)}


def refuse_if_set(f: dataclasses.Field, value: Any, where: str) -> None:
    if value != field_default(f):
        why, fix = refusal(f)
        raise UserError(why, where=where, fix=fix)
