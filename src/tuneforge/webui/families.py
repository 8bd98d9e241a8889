"""Known model families (model_families.yaml): a name → default hub id (or folder) and template."""

from __future__ import annotations

import functools
from importlib import resources

from tuneforge.utils.yaml_text import load_shipped_yaml

CUSTOM = "Custom"


@functools.cache
def families() -> dict[str, dict]:
    text = resources.files("tuneforge.webui").joinpath("model_families.yaml").read_text(encoding="utf-8")
    return load_shipped_yaml(text) or {}


def family_names() -> list[str]:
    return [CUSTOM, *families()]


def lookup(name: str | None) -> dict | None:
    """{'path': ..., 'template': ...} for a known family, None for Custom or an unknown name."""
    return families().get(name or "")


def guess_family(path: str | None) -> str:
    """The family whose hub id or name ends the path (models/Qwen2.5-7B-Instruct → Qwen2.5-7B-Instruct)."""
    if not path:
        return CUSTOM
    tail = path.rstrip("/").rsplit("/", 1)[-1].lower()
    for name, spec in families().items():
        if tail in (name.lower(), str(spec.get("path", "")).rsplit("/", 1)[-1].lower()):
            return name
    return CUSTOM
