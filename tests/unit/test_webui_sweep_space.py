"""The Sweep tab's space without a browser: rows start from the Train form's values, ticked rows become the
sweep.yaml dict that `tuneforge sweep` accepts, a bad row is one line naming its field, and Start queues a sweep job
whose base config is exactly what the Train tab's Start would run."""

from __future__ import annotations

import json

import pytest
import yaml

from tuneforge.errors import UserError
from tuneforge.sweep.spec import parse_sweep_spec
from tuneforge.webui import form
from tuneforge.webui.context import UIContext
from tuneforge.webui.sweep_space import CATEGORICAL, Row, build_spec, default_range, param_entry, searchable
from tuneforge.webui.tabs import sweep as sweep_tab
from tuneforge.webui.tabs.train import FORM_KEYS, config_from

SETTINGS = dict(metric="train_loss", direction="auto", n_trials=3, sampler="tpe", pruner="median", seed=0)
BASE = {"model_name_or_path": "Qwen/Qwen2.5-0.5B", "dataset": "toy", "template": "qwen", "output_dir": "saves/x"}


def form_values(**changed) -> dict:
    """The Train form's widget values: every field at its default, then `changed`."""
    values = {key: form.to_widget(key, form.default(key)) for key in form.TRAIN_FORM}
    values.update({form.REWARD_FILE: "", "checkpoint_path": None, "extra_args": ""})
    values.update(model_name_or_path=BASE["model_name_or_path"], dataset=["toy"], template="qwen")
    values.update(changed)
    assert set(values) == set(FORM_KEYS)
    return values


def test_rows_start_around_the_train_forms_values():
    assert default_range("learning_rate", "5e-5") == ("5e-06", "0.0005", True)  # a decade either side, log scale
    assert default_range("lora_rank", 8) == ("4", "16", False)
    assert default_range("per_device_train_batch_size", 1) == ("1", "2", False)  # ints stay ≥ 1
    assert default_range("num_train_epochs", 3.0) == ("1.5", "6", False)
    assert default_range("lora_dropout", 0.0) == ("0", "0.1", False)
    assert default_range("lora_alpha", "") == ("", "", False)  # unset (rank × 2): nothing to centre on
    assert default_range("lr_scheduler_type", "cosine") == ("", "", False)  # a choice: no range
    assert default_range("learning_rate", "") == ("1e-05", "0.001", True)  # empty box: the schema's default


def test_every_numeric_field_of_the_form_has_a_row_and_the_bookkeeping_fields_none():
    for key in ("learning_rate", "num_train_epochs", "lora_rank", "lora_alpha", "per_device_train_batch_size"):
        assert key in searchable()
    for key in ("gradient_accumulation_steps", "max_grad_norm", "cutoff_len", "warmup_steps", "pref_beta"):
        assert key in searchable()
    for key in ("logging_steps", "save_steps", "val_size", "max_samples"):
        assert key not in searchable()
    assert set(CATEGORICAL) <= set(searchable())


def test_ticked_rows_become_the_sweep_yaml_that_tuneforge_sweep_accepts():
    rows = {
        "learning_rate": Row(on=True, low="1e-5", high="1e-3", log=True),
        "lora_rank": Row(on=True, low="4", high="16", choices="4, 8, 16"),  # choices win over the range
        "num_train_epochs": Row(on=True, low="1", high="3", step="1"),
        "lr_scheduler_type": Row(on=True, choices="cosine,constant"),
        "max_grad_norm": Row(on=False, low="0.5", high="2"),  # not ticked: not searched
    }
    spec = build_spec(rows, form_values(), **SETTINGS)
    assert spec == {
        "metric": "train_loss",
        "n_trials": 3,
        "sampler": "tpe",
        "pruner": "median",
        "seed": 0,
        "params": {
            "learning_rate": {"low": 1e-5, "high": 1e-3, "log": True},
            "lora_rank": {"choices": [4, 8, 16]},
            "num_train_epochs": {"low": 1.0, "high": 3.0, "step": 1.0},
            "lr_scheduler_type": {"choices": ["cosine", "constant"]},
        },
    }
    assert "direction" not in spec  # auto: the sweep takes it from the metric
    parsed = parse_sweep_spec(spec, BASE)
    assert (parsed.direction, parsed.n_trials, parsed.kinds["lora_rank"]) == ("minimize", 3, "choice")
    assert build_spec(rows, form_values(), **{**SETTINGS, "direction": "maximize"})["direction"] == "maximize"


@pytest.mark.parametrize(
    ("key", "row", "message"),
    [
        ("learning_rate", Row(on=True, low="fast", high="1e-3"), "low 'fast' is not a number"),
        ("learning_rate", Row(on=True, low="1e-3", high="1e-5"), "is not below high"),
        ("learning_rate", Row(on=True, low="", high="1e-3"), "a range needs low and high"),
        ("lora_dropout", Row(on=True, low="0", high="0.2", log=True), "a log scale needs low > 0"),
        ("learning_rate", Row(on=True, low="1e-5", high="1e-3", log=True, step="1e-5"), "a log scale takes no step"),
        ("lora_rank", Row(on=True, low="4", high="16.5"), "'16.5' is not a whole number"),
        ("lora_rank", Row(on=True, choices="4, eight"), "choice 'eight' is not a number"),
        ("lr_scheduler_type", Row(on=True, choices="cosine, sideways"), "'sideways' is not a choice"),
        ("lr_scheduler_type", Row(on=True), "no choices given"),
    ],
)
def test_a_bad_row_is_one_line_naming_its_field(key, row, message):
    with pytest.raises(UserError) as err:
        param_entry(key, row)
    assert message in err.value.message and err.value.where == f"sweep: {key}" and err.value.fix


def test_nothing_ticked_a_field_the_method_does_not_use_and_bad_trial_counts_are_refused():
    with pytest.raises(UserError, match="no field to search"):
        build_spec({"lora_rank": Row(low="4", high="8")}, form_values(), **SETTINGS)
    with pytest.raises(UserError, match="lora_rank is not used by finetuning_type full") as err:
        build_spec({"lora_rank": Row(on=True, low="4", high="8")}, form_values(finetuning_type="full"), **SETTINGS)
    assert err.value.where == "sweep: lora_rank"
    rows = {"learning_rate": Row(on=True, low="1e-5", high="1e-3", log=True)}
    for bad in (0, 2.5, None):
        with pytest.raises(UserError, match="n_trials"):
            build_spec(rows, form_values(), **{**SETTINGS, "n_trials": bad})


def test_the_tabs_row_widgets_read_back_as_rows():
    args = []
    for key in sweep_tab.row_keys():
        for name in sweep_tab.row_components(key):
            part = name.removeprefix("sweep_").removesuffix(f"_{key}")
            args.append(
                {"on": key == "lora_rank", "log": False, "low": "4", "high": "16", "step": "", "choices": ""}[part]
            )
    rows = sweep_tab.rows_of(args)
    assert list(rows) == sweep_tab.row_keys()
    assert rows["lora_rank"] == Row(on=True, low="4", high="16")
    assert rows["lr_scheduler_type"] == Row(on=False)  # a choice row: toggle and choices only


@pytest.fixture
def ui(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "toy.json").write_text(json.dumps([{"instruction": "hi", "input": "", "output": "hello"}] * 4))
    (data / "dataset_info.json").write_text(json.dumps({"toy": {"file_name": "toy.json"}}))
    return UIContext(saves_dir=tmp_path / "saves", data_dir=str(data), cwd=tmp_path)


def test_start_queues_a_sweep_job_whose_base_config_is_what_train_start_would_run(ui, tmp_path):
    values = form_values(dataset_dir=ui.data_dir, learning_rate="5e-4", extra_args="max_steps: 4")
    rows = {"learning_rate": Row(on=True, low="1e-4", high="1e-2", log=True)}
    ui.scheduler.tick = lambda: None  # queue only: no sweep process starts here
    job = sweep_tab.start(ui, values, rows, SETTINGS)

    assert (job.kind, job.status) == ("sweep", "queued")
    sweep_dir = tmp_path / job.run_dir
    assert sweep_dir.is_relative_to((tmp_path / "saves").resolve())
    assert sweep_dir.name.startswith("sweep_")
    base = yaml.safe_load((sweep_dir / "config.yaml").read_text())
    assert base == {**config_from(ui, {**values, "output_dir": str(job.run_dir)}), "output_dir": base["output_dir"]}
    assert (base["learning_rate"], base["max_steps"]) == (5e-4, 4)
    spec = yaml.safe_load((sweep_dir / "sweep.yaml").read_text())
    assert spec["params"] == {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}}
    assert job.meta["jobs_db"] == str(ui.store.path.resolve())

    with pytest.raises(UserError, match="a range needs low and high"):  # nothing queued on a bad row
        sweep_tab.start(ui, values, {"learning_rate": Row(on=True, high="1e-2")}, SETTINGS)
    assert len(ui.store.list()) == 1
