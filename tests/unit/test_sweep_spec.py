"""sweep.yaml is checked before the first trial: each bad space is one line naming `sweep.yaml:<key>` (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tuneforge.cli import main
from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.sweep.results import best_row
from tuneforge.sweep.spec import grid_space, load_sweep_spec, parse_sweep_spec

BASE = {
    "model_name_or_path": "models/tiny",
    "dataset": "identity",
    "template": "chatml",
    "finetuning_type": "lora",
    "val_size": 0.2,
    "output_dir": "saves/lr",
}
LR = {"low": 1.0e-5, "high": 1.0e-3, "log": True}


def error_of(spec: dict, base: dict | None = None) -> str:
    with pytest.raises(UserError) as info:
        parse_sweep_spec(spec, base or BASE)
    line = info.value.one_line()
    assert "\n" not in line
    return line


def test_a_good_spec_types_each_space():
    spec = parse_sweep_spec(
        {
            "n_trials": 6,
            "seed": 0,
            "params": {
                "learning_rate": LR,
                "lora_rank": {"choices": [4, 8, 16]},
                "max_steps": {"low": 10, "high": 30, "step": 10},
                "num_train_epochs": {"low": 1, "high": 3, "step": 1},  # a float field: a float range
            },
        },
        BASE,
    )
    assert (spec.metric, spec.direction, spec.sampler, spec.pruner) == ("eval_loss", "minimize", "tpe", "median")
    assert spec.output_dir == "saves/lr-sweep"  # <base output_dir>-sweep
    assert spec.kinds == {
        "learning_rate": "float",
        "lora_rank": "choice",
        "max_steps": "int",
        "num_train_epochs": "float",
    }
    assert spec.params["max_steps"] == {"low": 10, "high": 30, "step": 10}
    assert spec.params["num_train_epochs"] == {"low": 1.0, "high": 3.0, "step": 1.0}


def test_accuracy_maximizes_and_a_grid_defaults_to_its_size():
    base = {**BASE, "compute_accuracy": True}
    spec = parse_sweep_spec(
        {
            "metric": "eval_accuracy",
            "sampler": "grid",
            "params": {"lora_rank": {"choices": [4, 8]}, "max_steps": {"low": 10, "high": 30, "step": 10}},
        },
        base,
    )
    assert spec.direction == "maximize" and spec.n_trials == 6
    assert grid_space(spec) == {"lora_rank": [4, 8], "max_steps": [10, 20, 30]}


@pytest.mark.parametrize(
    "spec, fragments",
    [
        (
            {"params": {"lerning_rate": LR}},
            ["sweep.yaml:params.lerning_rate", "unknown", "did you mean 'learning_rate'"],
        ),
        ({"params": {"learning_rate": {"low": 1e-3, "high": 1e-5}}}, ["sweep.yaml:params.learning_rate", "above high"]),
        ({"params": {"learning_rate": {"low": -1.0, "high": 1e-3}}}, ["params.learning_rate", "must be > 0"]),
        ({"params": {"lora_rank": {"choices": [0, 8]}}}, ["params.lora_rank", "lora_rank=0"]),
        ({"params": {"lora_rank": {"low": 4.5, "high": 16}}}, ["params.lora_rank", "whole number"]),
        ({"params": {"template": {"low": 1, "high": 2}}}, ["params.template", "not a number", "choices"]),
        ({"params": {"learning_rate": {"low": 0.0, "high": 1e-3, "log": True}}}, ["params.learning_rate", "log"]),
        ({"params": {"learning_rate": {"min": 1e-5, "max": 1e-3}}}, ["params.learning_rate", "low, high"]),
        ({"params": {"output_dir": {"choices": ["a", "b"]}}}, ["params.output_dir", "its own folder"]),
        ({"sampler": "grid", "params": {"learning_rate": LR}}, ["params.learning_rate", "grid", "step"]),
        ({"sampler": "cmaes", "params": {"learning_rate": LR}}, ["sweep.yaml:sampler", "tpe, random, grid"]),
        ({"pruner": "asha", "params": {"learning_rate": LR}}, ["sweep.yaml:pruner"]),
        ({"n_trials": 0, "params": {"learning_rate": LR}}, ["sweep.yaml:n_trials"]),
        ({"n_trails": 3, "params": {"learning_rate": LR}}, ["sweep.yaml:n_trails", "did you mean 'n_trials'"]),
        ({"metric": "bleu", "params": {"learning_rate": LR}}, ["sweep.yaml:metric", "eval_loss"]),
        ({"metric": "eval:sample", "params": {"learning_rate": LR}}, ["sweep.yaml:pruner", "set pruner: none"]),
        (
            {"metric": "eval:no_such_task", "pruner": "none", "params": {"learning_rate": LR}},
            ["sweep.yaml:metric", "no task 'no_such_task'"],
        ),
        ({"metric": "eval:", "pruner": "none", "params": {"learning_rate": LR}}, ["sweep.yaml:metric", "needs a task"]),
        ({"params": {}}, ["sweep.yaml:params"]),
        (
            {"sampler": "grid", "n_trials": 5, "params": {"lora_rank": {"choices": [4, 8]}}},
            ["sweep.yaml:n_trials", "2 points"],
        ),
    ],
)
def test_a_bad_spec_is_one_line_naming_its_key(spec, fragments):
    line = error_of(spec)
    for fragment in fragments:
        assert fragment in line, line


def test_the_metric_needs_what_it_reads_and_nothing_is_added_silently():
    no_eval = {k: v for k, v in BASE.items() if k != "val_size"}
    assert "add val_size" in error_of({"params": {"learning_rate": LR}}, no_eval)
    assert "compute_accuracy: true" in error_of({"metric": "eval_accuracy", "params": {"learning_rate": LR}})
    assert "eval_strategy" in error_of({"params": {"learning_rate": LR}}, {**BASE, "eval_strategy": "no"})
    parse_sweep_spec({"metric": "train_loss", "params": {"learning_rate": LR}}, no_eval)  # reads the log: fine


def test_best_row_is_the_best_completed_trial():
    rows = [
        {"number": 0, "state": "COMPLETE", "value": 2.0},
        {"number": 1, "state": "PRUNED", "value": 0.5},  # pruned: its value is an intermediate one
        {"number": 2, "state": "COMPLETE", "value": 1.5},
        {"number": 3, "state": "COMPLETE", "value": 1.5},
        {"number": 4, "state": "FAIL", "value": None},
    ]
    assert best_row(rows, "minimize")["number"] == 2  # the first of equals
    assert best_row(rows, "maximize")["number"] == 0
    assert best_row([], "minimize") is None


@pytest.mark.parametrize(
    "space, fragment",
    [
        ({"lerning_rate": LR}, "sweep.yaml:params.lerning_rate"),
        ({"learning_rate": {"low": 1e-3, "high": 1e-5}}, "above high"),
    ],
)
def test_the_cli_says_one_line_and_exits_2_before_any_trial(tmp_path, capsys, monkeypatch, space, fragment):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({"n_trials": 2, "params": space}))
    code = main(["sweep", "cfg.yaml", "sweep.yaml"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("tuneforge: error:"), err
    assert fragment in err and "sweep.yaml" in err
    assert not (tmp_path / "saves").exists()  # nothing written, no study, no job


def test_the_shipped_example_pair_parses():
    examples = Path(__file__).resolve().parents[2] / "examples" / "sweep"
    base = load_config(examples / "lora_lr_rank_train.yaml").to_dict(masked=False)
    spec = load_sweep_spec(examples / "lora_lr_rank.yaml", base)
    assert set(spec.params) == {"learning_rate", "lora_rank"} and spec.output_dir == "saves/demo/lr-rank-sweep"
