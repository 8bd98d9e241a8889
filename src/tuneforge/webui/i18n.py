"""UI strings from i18n/<lang>.yaml: label, info and choice names per key. Code holds no user-facing text."""

from __future__ import annotations

import functools
from importlib import resources

from tuneforge.utils.yaml_text import load_shipped_yaml

DEFAULT_LANG = "en"


@functools.cache
def languages() -> dict[str, str]:
    """code -> display name, for every i18n/<code>.yaml."""
    folder = resources.files("tuneforge.webui").joinpath("i18n")
    out = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            code = entry.name[: -len(".yaml")]
            out[code] = strings(code)["_meta"]["name"]
    return out


@functools.cache
def strings(lang: str) -> dict[str, dict]:
    text = resources.files("tuneforge.webui").joinpath("i18n", f"{lang}.yaml").read_text(encoding="utf-8")
    return load_shipped_yaml(text)


def entry(key: str, lang: str) -> dict:
    """The strings of one key in `lang`, falling back to English for a missing one."""
    data = strings(lang).get(key) or strings(DEFAULT_LANG).get(key)
    if data is None:
        raise KeyError(f"no UI text for '{key}' in i18n/{DEFAULT_LANG}.yaml")
    return data


def label(key: str, lang: str) -> str:
    return entry(key, lang)["label"]


def info(key: str, lang: str) -> str | None:
    return entry(key, lang).get("info")


def text(key: str, lang: str, **values) -> str:
    """A message with {placeholders} filled."""
    return label(key, lang).format(**values)


def choices(key: str, values: list, lang: str) -> list[tuple[str, str]]:
    """(display name, value) pairs for a dropdown; values without a translation show as themselves."""
    names = entry(key, lang).get("choices") or {}
    return [(str(names.get(str(v), v)), v) for v in values]
