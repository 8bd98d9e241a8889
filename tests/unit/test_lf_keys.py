"""LLaMA-Factory 0.9.5 parity of the schema: every field of its argument dataclasses (lf_0_9_5_fields.txt) is a key
we know and document, and each either takes effect (a named test shows the effect) or is refused in one line."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import typing
from pathlib import Path

import pytest
import yaml

from tuneforge.config import load_config
from tuneforge.config.fields import choices
from tuneforge.config.loader import GROUPS, known_keys
from tuneforge.config.refusals import field_default
from tuneforge.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
LF_FIELDS = [
    line.split()[1]
    for line in (Path(__file__).parent / "lf_0_9_5_fields.txt").read_text().splitlines()
    if line and not line.startswith("#")
]

# LF keys that were unknown before issue 15 and now take effect -> the test that shows the effect.
CHECKPOINTING = "tests/integration/test_checkpointing_keys.py"
HERE = "tests/unit/test_lf_keys.py"
EFFECT_TESTS = {
    "disable_gradient_checkpointing": (CHECKPOINTING, "test_disable_gradient_checkpointing_turns_it_off"),
    "use_reentrant_gc": (CHECKPOINTING, "test_use_reentrant_gc_reaches_the_trainer_and_trains"),
    "pure_bf16": (HERE, "test_lf_aliases_take_effect"),
    "block_diag_attn": (HERE, "test_lf_aliases_take_effect"),
}


def schema_fields() -> dict[str, dataclasses.Field]:
    """key -> field for every key of our own argument groups."""
    return {f.name: f for cls in GROUPS.values() for f in dataclasses.fields(cls)}


def refused(key: str):
    f = schema_fields().get(key)
    return f.metadata.get("refused") if f is not None else None


def test_the_list_is_lf_0_9_5():
    assert len(LF_FIELDS) == 241 and len(set(LF_FIELDS)) == 241


@pytest.mark.parametrize("key", LF_FIELDS)
def test_every_lf_key_is_known_and_documented(key):
    group, _ = known_keys()[key]
    docs = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    # the training group (Hugging Face's TrainingArguments, e.g. LF's `seed`) is described in the intro by name
    assert f"| `{key}` |" in docs or (group == "training" and f"`{key}`" in docs), f"{key} not in docs/config.md"


def test_docs_config_is_generated_from_the_schema():
    spec = importlib.util.spec_from_file_location("gen_config_docs", ROOT / "scripts" / "gen_config_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "config.md").read_text(encoding="utf-8") == module.render(), (
        "run scripts/gen_config_docs.py"
    )


def other_value(key: str) -> typing.Any:
    """A value of the key's type that differs from its default: what a user who means it would write."""
    f = schema_fields()[key]
    owner = next(cls for cls in GROUPS.values() if key in {x.name for x in dataclasses.fields(cls)})
    tp, default = typing.get_type_hints(owner)[key], field_default(f)
    options = choices(tp)
    if options:
        return next(c for c in options if c != default and c is not None)
    if isinstance(default, bool):
        return not default
    if isinstance(default, (int, float)):
        return default + 1
    text = str(tp)
    return True if "bool" in text else 2 if "int" in text else 0.5 if "float" in text else "x"


REFUSED = sorted(k for k in set(LF_FIELDS) if refused(k))


@pytest.mark.parametrize("key", REFUSED)
def test_a_refused_key_stops_in_one_line_saying_why(key, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"model_name_or_path": "m", key: other_value(key)}, sort_keys=False))
    why, fix = refused(key)
    with pytest.raises(UserError) as caught:
        load_config(cfg)
    assert caught.value.where == f"{cfg}:2 ({key})"
    assert why in str(caught.value) and fix in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("key", REFUSED)
def test_a_refused_key_at_its_default_is_not_refused(key):
    """LF's example configs spell out defaults (freeze_vision_tower: true, ...): those must not stop a run."""
    why, _ = refused(key)
    try:
        load_config(None, {"model_name_or_path": "m", key: field_default(schema_fields()[key])})
    except UserError as exc:  # another rule may still apply (e.g. apollo_* without use_apollo)
        assert why not in str(exc)


@pytest.mark.parametrize("key", sorted(EFFECT_TESTS))
def test_each_implemented_key_names_a_test_of_its_effect(key):
    assert key in LF_FIELDS and not refused(key)
    path, name = EFFECT_TESTS[key]
    assert re.search(rf"^def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.M), f"{path}::{name}"


def test_every_new_lf_key_is_implemented_or_refused():
    """The keys LF has beyond the Hugging Face fields and those TuneForge had before issue 15: each one is in
    EFFECT_TESTS or refused, never accepted and ignored."""
    text = (Path(__file__).parent / "lf_keys_known_before.txt").read_text()
    before = {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}
    new = [k for k in LF_FIELDS if k not in before]
    assert [k for k in new if not refused(k) and k not in EFFECT_TESTS] == []


def test_lf_aliases_take_effect():
    cfg = load_config(None, {"model_name_or_path": "m", "pure_bf16": True})
    assert cfg.model.compute_type == "pure_bf16"
    cfg = load_config(None, {"model_name_or_path": "m", "block_diag_attn": True})
    assert cfg.data.neat_packing is True
    assert load_config(None, {"model_name_or_path": "m", "pure_bf16": False}).model.compute_type == "auto"
