"""The stage record (config/stages.py) is the one description of a stage: every stage has its recipe and its UI
text, no other module lists stage names, and validation, data loading, the estimate and the Web UI agree with it."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
from pathlib import Path

import pytest

from tuneforge.config import load_config
from tuneforge.config.finetuning_args import FinetuningArguments
from tuneforge.config.stages import RECORDS, REFERENCE_KEYS, STAGE_NAMES, STAGES, stage_keys, stage_record
from tuneforge.config.validate import check_stage
from tuneforge.data.conversation import ASSISTANT, USER, Conversation, Message
from tuneforge.data.registry import load_registry
from tuneforge.data.stage_sets import check_dataset_for_stage, dataset_fits_stage, encode_batch
from tuneforge.data.template import get_template
from tuneforge.errors import UserError
from tuneforge.model.estimate import TRL_MIB, estimate_memory
from tuneforge.train.arguments import groups_by_length
from tuneforge.train.effective_tokens import count_tokens
from tuneforge.webui import form, i18n

SRC = Path(__file__).resolve().parents[2] / "src" / "tuneforge"
RECORD_MODULE = SRC / "config" / "stages.py"
DEFAULTS = {f.name: f.default for f in dataclasses.fields(FinetuningArguments)}


def _cfg(stage: str, **keys):
    base = {"model_name_or_path": "some/model", "template": "qwen", "dataset": "d", "stage": stage}
    return load_config(None, {**base, **keys})


def _stage_error(stage: str, **keys) -> str:
    """The message check_stage refuses a config with, or '' when it takes it."""
    try:
        check_stage(_cfg(stage, **keys))
    except UserError as exc:
        return str(exc)
    return ""


# -- the record itself --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.name)
def test_every_stage_has_a_recipe_module_with_run(record):
    spec = importlib.util.find_spec(record.recipe)
    assert spec is not None and spec.origin, record.recipe
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    assert any(isinstance(node, ast.FunctionDef) and node.name == "run" for node in tree.body), record.recipe


@pytest.mark.parametrize("lang", list(i18n.languages()))
def test_every_stage_has_its_label_in_every_language_and_no_other_stage_has_one(lang):
    choices = i18n.strings(lang)["stage"]["choices"]
    assert set(choices) == set(STAGE_NAMES)
    for record in RECORDS:
        key, _, name = record.label_key.partition(".choices.")
        assert i18n.strings(lang)[key]["choices"][name].strip()


def test_the_config_schema_offers_exactly_the_recorded_stages():
    assert form.schema()["stage"]["choices"] == list(STAGE_NAMES)


def test_record_fields_are_real_settings():
    for record in RECORDS:
        for key in (*record.keys, *record.ui_fields):
            assert key in DEFAULTS, (record.name, key)
        assert set(record.ui_fields) <= set(record.keys), record.name  # the box shows the stage's own settings
        if isinstance(record.reference, str):
            assert record.reference in DEFAULTS, record.name
        assert record.rows_per_sample in (1, 2)


def _stage_name_collections(tree: ast.AST):
    """(line, names) of every literal tuple / list / set, and dict keys, holding two or more stage names."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [k for k in node.keys if k is not None]
        else:
            continue
        names = [e.value for e in items if isinstance(e, ast.Constant) and e.value in STAGES]
        if len(set(names)) >= 2:
            yield node.lineno, names


def test_no_module_but_the_record_lists_stage_names():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path == RECORD_MODULE:
            continue
        for line, names in _stage_name_collections(ast.parse(path.read_text(encoding="utf-8"))):
            found.append(f"{path.relative_to(SRC)}:{line} {names}")
    assert found == [], "stage lists outside config/stages.py (read the stage record instead):\n" + "\n".join(found)


def test_the_stage_list_check_catches_a_list():
    tree = ast.parse('RANKED = ("rm", "dpo")\nOK = ("rm",)\nD = {"pt": 1, "sft": 2}\nX = ["a", "sft"]')
    assert [line for line, _ in _stage_name_collections(tree)] == [1, 3]


# -- validation ---------------------------------------------------------------------------------------------------


def _a_value(key: str):
    """A value for a stage-owned key that type-checks (defaults may be None)."""
    return {"reward_model": "some/rm", "reward_model_quantization_bit": 4, "reward_model_adapters": "a"}.get(
        key, DEFAULTS[key]
    )


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_validation_takes_a_stages_own_keys_and_refuses_the_others(stage):
    for key, owners in stage_keys().items():
        message = _stage_error(stage, **{key: _a_value(key)})
        if stage in owners:
            assert "this run is stage" not in message, (stage, key, message)
        else:
            assert f"'{key}'" in message and f"this run is stage {stage}" in message, (stage, key, message)
            assert all(owner in message for owner in owners)


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_reference_keys_follow_the_records_reference(stage):
    record = stage_record(stage)
    on = {"beta": 0.04}.get(record.reference, True)  # a switch setting: a flag (use_asft_loss) or a number (beta)
    for switch in ({}, {record.reference: on} if isinstance(record.reference, str) else {}):
        uses = record.uses_reference(_cfg(stage, **switch).finetuning)
        for key in REFERENCE_KEYS:
            message = _stage_error(stage, **switch, **{key: "some/ref" if key != "ref_model_quantization_bit" else 4})
            assert (f"'{key}' is used by stages" in message) is not uses, (stage, switch, key, message)
    assert stage_record("sft").uses_reference(_cfg("sft", use_asft_loss=True).finetuning)
    assert not stage_record("sft").uses_reference(_cfg("sft").finetuning)


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.name)
def test_reward_model_beta_and_packing_follow_the_record(record):
    keys = {"reward_model": "some/rm"} if "reward_model" in record.keys and not record.needs_reward_model else {}
    assert ("needs a reward model" in _stage_error(record.name, **keys)) is record.needs_reward_model
    if "pref_beta" in record.keys:
        assert "pref_beta must be > 0" in _stage_error(record.name, pref_beta=0.0)
    reward = {"reward_model": "some/rm"} if record.needs_reward_model else {}
    packing_refused = "packing applies to stages pt and sft" in _stage_error(record.name, packing=True, **reward)
    assert packing_refused is not record.packing


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.name)
def test_trainer_callback_keys_follow_the_records_own_loop(record):
    reward = {"reward_model": "some/rm"} if record.needs_reward_model else {}
    message = ""
    try:
        _cfg(record.name, include_effective_tokens_per_second=True, **reward)
    except UserError as exc:
        message = str(exc)
    assert (f"stage {record.name} runs its own loop" in message) is record.own_loop
    if record.own_loop:
        assert all(r.name in message for r in RECORDS if not r.own_loop)


# -- data loading -------------------------------------------------------------------------------------------------


def test_datasets_fit_the_stages_data_kind():
    registry = load_registry("data")
    for record in RECORDS:
        fits = {name for name, attr in registry.items() if dataset_fits_stage(record.name, attr)}
        assert fits, record.name
        assert set(form.datasets_for_stage("data", record.name)) == fits
        for name, attr in registry.items():
            if record.data == "pairwise":
                assert (name in fits) is bool(attr.ranking)
            elif record.data == "unpaired":
                assert (name in fits) is bool(attr.kto_tag)
            if name in fits:
                check_dataset_for_stage(record.name, attr)  # loading agrees with the list: no error


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.name)
def test_each_stage_encodes_the_columns_its_record_counts(record, tiny_tokenizer):
    template = get_template("qwen", tiny_tokenizer)
    template.fix_tokenizer(tiny_tokenizer)
    conv = Conversation(
        [Message(USER, "Name a fruit."), Message(ASSISTANT, "Apple.")], rejected=Message(ASSISTANT, "No."), kto_tag=True
    )
    args = _cfg(record.name, cutoff_len=64).data
    columns, dropped = encode_batch(record.name, [conv, conv], template, tiny_tokenizer, args, pack=False)
    assert not dropped and columns
    for column, _ in record.token_columns:
        assert len(columns[column]) == 2, (record.name, column)
    expected = sum(times * 2 * len(columns[column][0]) for column, times in record.token_columns)
    assert count_tokens(columns, record.name) == expected


def test_batching_follows_the_record():
    for record in RECORDS:
        reward = {"reward_model": "some/rm"} if record.needs_reward_model else {}
        assert groups_by_length(_cfg(record.name, **reward)) is record.group_by_length, record.name


# -- the estimate -------------------------------------------------------------------------------------------------


def test_the_estimate_counts_what_the_record_says(tiny_model_dir):
    def estimate(stage, **keys):
        base = {"model_name_or_path": str(tiny_model_dir), "template": "qwen", "stage": stage}
        base.update(cutoff_len=64, per_device_train_batch_size=3, finetuning_type="full")
        return estimate_memory(load_config(None, {**base, **keys}), cuda=False)

    sft = estimate("sft")
    for record in RECORDS:
        keys = {"reward_model": "some/rm"} if record.needs_reward_model else {}
        out = estimate(record.name, **keys)
        assert out["batch_rows"] == 3 * record.rows_per_sample, record.name
        trl = TRL_MIB if record.trl_overhead else 0
        assert out["framework"] - sft["framework"] == pytest.approx(trl, abs=0.11), record.name
        full_copy = record.uses_reference(load_config(None, {"stage": record.name, **keys}).finetuning)
        assert out["weights"] == pytest.approx(sft["weights"] * (2 if full_copy else 1), abs=0.11), record.name
        with_ref = estimate(record.name, **keys, ref_model="some/ref") if full_copy else out
        assert with_ref["weights"] == pytest.approx(
            sft["weights"], abs=0.11
        )  # a given reference is not a copy of the policy


# -- the Web UI ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.name)
def test_the_web_ui_shows_and_keeps_exactly_the_records_fields(record):
    box_shown, fields_shown = form.stage_box(record.name)
    assert box_shown is bool(record.ui_fields)
    assert [key for key, shown in fields_shown.items() if shown] == list(record.ui_fields)
    assert all(key in form.TRAIN_FORM for key in record.ui_fields)
    changed = {"pref_beta": 0.3, "pref_ftx": 0.5, "pref_loss": "ipo", "reward_funcs": ["length"]}
    values = {"stage": record.name, "model_name_or_path": "m", "dataset": ["d"], "finetuning_type": "lora"}
    values.update({key: changed.get(key, form.default(key)) for key in form.STAGE_FIELDS})
    cfg = form.build_config(values)
    assert [key for key in form.STAGE_FIELDS if key in cfg] == [k for k in record.ui_fields if k in changed]
    if record.needs_reward_model:
        cfg["reward_model"] = "some/rm"
    form.validate(cfg)  # what the form keeps, `tuneforge train` takes


def test_rm_shows_no_preference_box_and_writes_no_preference_keys():
    """The old disagreement: the box showed for rm, then its values were dropped."""
    assert form.stage_box("rm") == (False, dict.fromkeys(form.STAGE_FIELDS, False))
    values = {"stage": "rm", "model_name_or_path": "m", "dataset": ["d"], "pref_beta": 0.3, "pref_loss": "ipo"}
    assert form.build_config(values, ["stage", "model_name_or_path", "dataset", *form.STAGE_FIELDS]) == {
        "stage": "rm",
        "model_name_or_path": "m",
        "dataset": "d",
    }


@pytest.fixture(scope="module")
def on_stage(tmp_path_factory):
    """The Train tab's stage handler and its outputs' ids, from the real page."""
    pytest.importorskip("gradio")
    from tuneforge.webui.app import create_app

    demo, ui = create_app(tmp_path_factory.mktemp("saves"), data_dir="data")
    ui.scheduler.stop()
    (dep,) = {id(d.fn): d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "on_stage"}.values()
    return dep.fn, [o.elem_id for o in dep.outputs]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.name)
def test_the_train_tab_shows_the_records_fields_when_the_stage_changes(record, on_stage):
    handler, ids = on_stage
    updates = dict(zip(ids, handler(record.name, "data", []), strict=True))
    assert updates["tf-acc_pref"]["visible"] is bool(record.ui_fields)
    shown = [key for key in form.STAGE_FIELDS if updates[f"tf-{key}"]["visible"]]
    assert shown == list(record.ui_fields)
    assert updates["tf-dataset"]["choices"] == form.datasets_for_stage("data", record.name)
