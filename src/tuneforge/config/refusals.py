"""Keys we know (LLaMA-Factory's, documented in docs/config.md) but cannot honour in this version: set away from
their default, each stops the run in one line saying why and what would work. Never accepted and ignored."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from tuneforge.config.fields import refusal
from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.run_config import RunConfig


def field_default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def refused_fields(cfg: RunConfig):
    """(key, value, default, (why, fix)) for every refused key of cfg's argument groups."""
    for group in dataclasses.fields(cfg):
        args = getattr(cfg, group.name)
        if not dataclasses.is_dataclass(args):
            continue
        for f in dataclasses.fields(args):
            reason = refusal(f)
            if reason:
                yield f.name, getattr(args, f.name), field_default(f), reason


def check_refused(cfg: RunConfig) -> None:
    for key, value, default, (why, fix) in refused_fields(cfg):
        if key in cfg.given and value != default:
            raise UserError(why, where=cfg.where(key), fix=fix)
