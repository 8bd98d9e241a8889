"""The dataset registry: `dataset_info.json` in LLaMA-Factory's schema, read into `DatasetAttr`s.

Compatibility notes (LLaMA-Factory files work as they are):
- When an entry has `columns`, the alpaca columns it does not list (prompt, query, response) are unset, as in
  LLaMA-Factory: `{"columns": {"prompt": "text"}}` means plain text rows without a response (pre-training).
- Tags an entry does not list keep their defaults.
- Hub and script datasets are listed, but selecting one without a local `file_name` is an error.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

from tuneforge.errors import UserError

INFO_FILE = "dataset_info.json"
FORMATTINGS = ("alpaca", "sharegpt", "openai")
COLUMN_KEYS = (
    *("prompt", "query", "response", "history", "messages", "system", "tools", "chosen", "rejected", "kto_tag"),
    "answer",  # the reference answer GRPO's accuracy reward checks against (not a LLaMA-Factory column)
)
MEDIA_COLUMNS = ("images", "videos", "audios")
TAG_KEYS = ("role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag")
SHAREGPT_TAGS = dict(
    zip(TAG_KEYS, ("from", "value", "human", "gpt", "observation", "function_call", "system"), strict=True)
)
OPENAI_TAGS = dict(
    zip(TAG_KEYS, ("role", "content", "user", "assistant", "tool", "function_call", "system"), strict=True)
)
HUB_KEYS = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url")
# Keys LLaMA-Factory knows; others are ignored unless they look like a typo of one of these.
ENTRY_KEYS = (
    ("file_name", "formatting", "ranking", "split", "num_samples", "columns", "tags", "subset", "folder")
    + ("revision", "file_sha1", "load_from", "cloud_file_name")
    + HUB_KEYS
)


@dataclass
class DatasetAttr:
    """One registered dataset: where its file is, its format, and which columns / tags hold what."""

    name: str
    file_name: str | None = None
    formatting: str = "alpaca"
    ranking: bool = False
    split: str = "train"
    num_samples: int | None = None
    hub_url: str | None = None  # e.g. 'hf_hub_url "org/name"': listed, not loadable without file_name
    media_columns: tuple[str, ...] = ()
    where: str = ""  # "dataset_info.json:line" of the entry
    # columns
    prompt: str | None = "instruction"
    query: str | None = "input"
    response: str | None = "output"
    history: str | None = None
    messages: str | None = "conversations"
    system: str | None = None
    tools: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    kto_tag: str | None = None
    answer: str | None = None
    images: str | None = None  # media columns: a path / data URL or a list of them per row (data/media.py)
    videos: str | None = None
    audios: str | None = None
    # tags (sharegpt / openai)
    role_tag: str = "from"
    content_tag: str = "value"
    user_tag: str = "human"
    assistant_tag: str = "gpt"
    observation_tag: str = "observation"
    function_tag: str = "function_call"
    system_tag: str = "system"


def _line_of(text: str, name: str) -> int:
    """Line of the entry `"name":` in the JSON text (1 when not found)."""
    pos = text.find(json.dumps(name, ensure_ascii=False) + ":")
    if pos < 0:
        pos = text.find(json.dumps(name))
    return text.count("\n", 0, pos) + 1 if pos >= 0 else 1


def _check_keys(obj: dict, known: tuple[str, ...], what: str, where: str) -> None:
    """Ignore unknown keys (other tools' extensions) unless one looks like a typo of a known key."""
    for key in obj:
        if key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        if close:
            raise UserError(f"unknown {what} key '{key}'", where=where, fix=f"did you mean '{close[0]}'?")


def _parse_entry(name: str, entry: object, where: str) -> DatasetAttr:
    if not isinstance(entry, dict):
        raise UserError(f"dataset '{name}' must be an object", where=where, fix='write e.g. {"file_name": "x.json"}')
    _check_keys(entry, ENTRY_KEYS, "dataset", where)
    attr = DatasetAttr(name=name, file_name=entry.get("file_name"), where=where)
    hub = next((k for k in HUB_KEYS if entry.get(k)), None)
    if hub:
        attr.hub_url = f"{hub} {json.dumps(entry[hub])}"
    if not attr.file_name and not hub:
        raise UserError(f"dataset '{name}' has no file_name", where=where, fix="set file_name (a file or folder)")

    attr.formatting = entry.get("formatting", "alpaca")
    if attr.formatting not in FORMATTINGS:
        raise UserError(
            f"dataset '{name}': unknown formatting '{attr.formatting}'", where=where, fix=f"use one of {FORMATTINGS}"
        )
    if attr.file_name is not None and not isinstance(attr.file_name, str):
        raise UserError(f"dataset '{name}': file_name must be a string (a file or folder)", where=where)
    attr.ranking = entry.get("ranking", False)
    if not isinstance(attr.ranking, bool):
        raise UserError(f"dataset '{name}': ranking must be true or false, got {attr.ranking!r}", where=where)
    attr.split = entry.get("split", "train")
    num = entry.get("num_samples")
    if num is not None and (isinstance(num, bool) or not isinstance(num, int) or num < 1):
        raise UserError(f"dataset '{name}': num_samples must be a positive integer, got {num!r}", where=where)
    attr.num_samples = num
    if attr.formatting == "openai":
        attr.messages = "messages"

    columns = entry.get("columns")
    if columns is not None:
        if not isinstance(columns, dict):
            raise UserError(f"dataset '{name}': columns must be an object", where=where)
        _check_keys(columns, COLUMN_KEYS + MEDIA_COLUMNS, "column", where)
        if attr.formatting == "alpaca":  # unlisted alpaca columns are unset, as in LLaMA-Factory
            attr.prompt = attr.query = attr.response = None
        for key in COLUMN_KEYS:
            if key in columns:
                setattr(attr, key, columns[key])
        attr.media_columns = tuple(k for k in MEDIA_COLUMNS if columns.get(k))
        for key in attr.media_columns:
            setattr(attr, key, columns[key])

    tags = OPENAI_TAGS if attr.formatting == "openai" else SHAREGPT_TAGS
    user_tags = entry.get("tags") or {}
    if not isinstance(user_tags, dict):
        raise UserError(f"dataset '{name}': tags must be an object", where=where)
    _check_keys(user_tags, TAG_KEYS, "tag", where)
    for key in TAG_KEYS:
        setattr(attr, key, user_tags.get(key) or tags[key])
    return attr


def load_registry(dataset_dir: str | Path) -> dict[str, DatasetAttr]:
    """Read `<dataset_dir>/dataset_info.json` into {name: DatasetAttr}."""
    path = Path(dataset_dir) / INFO_FILE
    if str(dataset_dir) == "ONLINE" or str(dataset_dir).startswith("REMOTE:"):
        raise UserError(
            f"dataset_dir '{dataset_dir}' (hub datasets) is not supported",
            where="dataset_dir",
            fix="download the dataset and point dataset_dir at a folder with dataset_info.json",
        )
    if not path.is_file():
        raise UserError(
            "dataset_info.json not found",
            where=str(path),
            fix="set dataset_dir to the folder holding dataset_info.json (the shipped one is 'data')",
        )
    text = path.read_text(encoding="utf-8-sig")
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON: {exc.msg}", where=f"{path}:{exc.lineno}", fix="fix the syntax") from exc
    if not isinstance(info, dict):
        raise UserError("dataset_info.json must hold an object of {name: {...}}", where=f"{path}:1")
    return {name: _parse_entry(name, entry, f"{path}:{_line_of(text, name)}") for name, entry in info.items()}


def split_names(names: str | list[str] | None) -> list[str]:
    """'a, b' or ['a', 'b'] → ['a', 'b']; None → []."""
    if names is None:
        return []
    items = names.split(",") if isinstance(names, str) else names
    return [n.strip() for n in items if n and n.strip()]


def get_dataset_attrs(names: str | list[str] | None, dataset_dir: str | Path) -> list[DatasetAttr]:
    """The attributes of the named datasets (comma-separated string or list), in order."""
    wanted = split_names(names)
    if not wanted:
        return []
    registry = load_registry(dataset_dir)
    info = Path(dataset_dir) / INFO_FILE
    attrs = []
    for name in wanted:
        if name not in registry:
            close = difflib.get_close_matches(name, list(registry), n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'? " if close else ""
            shown = ", ".join(sorted(registry)[:30]) + (" ..." if len(registry) > 30 else "")
            raise UserError(f"unknown dataset '{name}'", where=str(info), fix=f"{hint}registered: {shown or '(none)'}")
        attr = registry[name]
        if not attr.file_name:
            raise UserError(
                f"dataset '{name}' comes from {attr.hub_url}; hub and script datasets are not loaded at run time",
                where=attr.where,
                fix=f"download it into {dataset_dir} (json/jsonl/parquet/arrow) and set file_name",
            )
        if attr.audios:  # images and videos are read (data/media.py); training on them is refused when encoding
            raise UserError(
                f"dataset '{name}' has an audio column '{attr.audios}'; audio in the data is not supported yet",
                where=attr.where,
                fix="use a dataset without audio, or drop the audios column",
            )
        attrs.append(attr)
    return attrs
