"""Read a YAML/JSON config plus `key=value` overrides into typed argument groups.

Keys are flat, as in LLaMA-Factory (`lora_rank: 8`); a group prefix is accepted too
(`finetuning.lora_rank=8`, or a nested `finetuning:` mapping). An unknown key is an error that
names the closest known key.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import yaml

from tuneforge.config.aliases import apply_aliases
from tuneforge.config.coerce import coerce
from tuneforge.config.data_args import DataArguments
from tuneforge.config.eval_args import EvaluationArguments
from tuneforge.config.fields import field_types
from tuneforge.config.finetuning_args import FinetuningArguments
from tuneforge.config.generating_args import GeneratingArguments
from tuneforge.config.model_args import ModelArguments
from tuneforge.config.multimodal_args import MultimodalArguments
from tuneforge.config.platform_args import PlatformArguments
from tuneforge.config.refusals import refuse_if_set, refused_fields
from tuneforge.config.run_config import MASK, RunConfig, is_secret
from tuneforge.config.tracking_args import TrackingArguments
from tuneforge.config.training import report_to, training_field_types
from tuneforge.config.validate import validate
from tuneforge.errors import UserError

GROUPS = {
    "model": ModelArguments,
    "data": DataArguments,
    "finetuning": FinetuningArguments,
    "generation": GeneratingArguments,
    "evaluation": EvaluationArguments,
    "tracking": TrackingArguments,
    "multimodal": MultimodalArguments,
    "platform": PlatformArguments,
}
TRAINING = "training"


def known_keys() -> dict[str, tuple[str, Any]]:
    """key -> (group, type) for every key a config may hold."""
    keys: dict[str, tuple[str, Any]] = {}
    for key, tp in training_field_types().items():
        keys[key] = (TRAINING, tp)
    for group, cls in GROUPS.items():
        for key, tp in field_types(cls).items():
            keys[key] = (group, tp)  # our groups win over a same-named HF field (e.g. overwrite_output_dir)
    return keys


def read_config_file(path: str | Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The mapping in a YAML or JSON file, with the line of each top-level key."""
    path = Path(path)
    if not path.is_file():
        raise UserError("config file not found", where=str(path), fix="check the path")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON: {exc.msg}", where=f"{path}:{exc.lineno}", fix="fix the syntax") from exc
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f"{path}:{line + 1}" if line is not None else str(path)
        raise UserError(f"invalid YAML: {getattr(exc, 'problem', exc)}", where=where, fix="fix the syntax") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError("a config file must hold a mapping of key: value", where=str(path))
    lines = {}
    if path.suffix != ".json":
        node = yaml.compose(text)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                lines[str(key_node.value)] = key_node.start_mark.line + 1
                if isinstance(value_node, yaml.MappingNode) and key_node.value in (*GROUPS, TRAINING):
                    for sub, _ in value_node.value:
                        lines[str(sub.value)] = sub.start_mark.line + 1
    else:
        for number, line in enumerate(text.splitlines(), 1):
            for key in data:
                if f'"{key}"' in line and key not in lines:
                    lines[key] = number
    return data, lines


def parse_overrides(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"override {item!r} is not key=value", fix="write it as key=value, e.g. lora_rank=16")
        key, raw = item.split("=", 1)
        out[key.strip()] = _override_value(raw) if raw.strip() else None
    return out


def _override_value(raw: str) -> Any:
    """The value as YAML reads it (16 -> int, true -> bool); text that is not YAML, such as a name pattern starting
    with * (a YAML alias), stays the text given."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _flatten(data: dict[str, Any], lines: dict[str, int]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        key = str(key)
        if key in (*GROUPS, TRAINING) and isinstance(value, dict):
            flat.update({str(k): v for k, v in value.items()})
        elif "." in key and key.split(".", 1)[0] in (*GROUPS, TRAINING):
            sub = key.split(".", 1)[1]
            flat[sub] = value
            if key in lines:
                lines[sub] = lines[key]
        else:
            flat[key] = value
    return flat


def suggest(key: str, candidates) -> str | None:
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def read_flat(
    path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, int]]:
    """The keys as written (file, then overrides on top), flat, with the line of each; nothing checked yet.
    Imports no training library: what the CLI reads to decide which optional backends a run needs."""
    data, lines = read_config_file(path) if path else ({}, {})
    flat = _flatten(data, lines)
    extra = overrides if isinstance(overrides, dict) else parse_overrides(overrides or [])
    flat.update(_flatten(extra, {}))
    return flat, lines


def load_config(path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None) -> RunConfig:
    flat, lines = read_flat(path, overrides)

    source = str(path) if path else None

    def where(key: str) -> str:
        return f"{source}:{lines[key]} ({key})" if source and key in lines else key

    apply_aliases(flat, where)
    for key in [k for k, v in flat.items() if v == MASK and is_secret(k)]:
        del flat[key]  # a masked secret from a saved config: unset, not the literal "***"
    known = known_keys()
    for key in flat:
        if key not in known:
            close = suggest(key, known)
            fix = f"did you mean '{close}'?" if close else "see docs/config.md for the keys"
            raise UserError(f"unknown key '{key}'", where=where(key), fix=fix)

    for key, f in refused_fields(GROUPS.values()).items():  # first: why a key cannot run beats any other check
        if key in flat:
            refuse_if_set(f, coerce(flat[key], known[key][1], where(key)), where(key))
    groups: dict[str, dict[str, Any]] = {g: {} for g in (*GROUPS, TRAINING)}
    for key, value in flat.items():
        group, tp = known[key]
        groups[group][key] = flat[key] = coerce(value, tp, where(key))
    built = {}
    for group, cls in GROUPS.items():
        built[group] = cls(**groups[group])  # `Literal[...]` choices were checked by coerce

    cfg = RunConfig(training=groups[TRAINING], given=flat, source=source, lines=lines, **built)
    if "report_to" in groups[TRAINING]:
        groups[TRAINING]["report_to"] = flat["report_to"] = report_to(groups[TRAINING]["report_to"], where("report_to"))
    validate(cfg)
    return cfg
