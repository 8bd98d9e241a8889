"""LLaMA-Factory's trainer keys: early_stopping_steps stops a run whose eval metric stops improving,
include_effective_tokens_per_second writes the real tokens/s into the results, eval_num_beams reaches generate()."""

from __future__ import annotations

import json

import pytest

from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.train.run import run_training
from tuneforge.utils import run_folder


def test_early_stopping_stops_when_the_metric_stops_improving(train_overrides):
    """greater_is_better on eval_loss: as the loss falls the metric never improves after the first evaluation, so
    with patience 2 the run stops at the third evaluation (step 6 of 12)."""
    keys = {"val_size": 0.25, "eval_steps": 2, "metric_for_best_model": "eval_loss", "greater_is_better": True}
    out = run_training(load_config(None, train_overrides("lora", early_stopping_steps=2, **keys)))
    evals = [(r["step"], r["eval_loss"]) for r in run_folder.read_records(out) if r.get("eval_loss") is not None]
    assert [step for step, _ in evals] == [2, 4, 6, 6], evals  # + the final evaluation after training
    assert evals[0][1] > evals[1][1] > evals[2][1], evals
    state = json.loads((out / "trainer_state.json").read_text(encoding="utf-8"))
    assert state["global_step"] == 6 < state["max_steps"] == 12


def test_early_stopping_defaults_to_eval_loss(train_overrides, tmp_path):
    from tuneforge.train.arguments import build_training_arguments

    cfg = load_config(None, train_overrides("lora", early_stopping_steps=3, val_size=0.25))
    args = build_training_arguments(cfg, str(tmp_path))
    assert args.metric_for_best_model == "loss" and args.greater_is_better is False


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({}, "no evaluation set"),
        ({"val_size": 0.25, "eval_strategy": "no"}, "eval_strategy is no"),
        ({"val_size": 0.25, "early_stopping_steps": 0}, "at least 1"),
    ],
)
def test_early_stopping_without_evaluations_is_refused(extra, fragment, train_overrides):
    with pytest.raises(UserError, match=fragment):
        load_config(None, train_overrides("lora", **{"early_stopping_steps": 2, **extra}))


def test_effective_tokens_per_second_is_tokens_times_epochs_over_runtime(train_overrides):
    from tuneforge.train.sft import load_for_training

    cfg = load_config(None, train_overrides("lora", include_effective_tokens_per_second=True))
    out = run_training(cfg)
    results = json.loads(run_folder.done_path(out).read_text(encoding="utf-8"))
    train_set = load_for_training(cfg)[2]
    tokens = sum(len(ids) for ids in train_set["input_ids"])  # rows before batching: no padding
    expected = tokens * results["epoch"] / results["train_runtime"]
    assert results["effective_tokens_per_sec"] == pytest.approx(expected, rel=1e-3)


def test_effective_tokens_count_what_each_stage_feeds():
    from tuneforge.train.effective_tokens import count_tokens

    pairs = {"prompt_ids": [[1, 2, 3]], "chosen_ids": [[4, 5]], "rejected_ids": [[6]]}
    assert count_tokens(pairs, "dpo") == 2 * 3 + 2 + 1  # the prompt runs with each response
    assert count_tokens({"chosen_ids": [[1, 2, 4, 5]], "rejected_ids": [[1, 2, 6]]}, "rm") == 7
    assert count_tokens({"prompt_ids": [[1, 2]], "completion_ids": [[3, 4, 5]]}, "kto") == 5


def test_effective_tokens_per_second_refused_when_it_cannot_count(train_overrides):
    with pytest.raises(UserError, match="stage ppo runs its own loop"):
        load_config(
            None, train_overrides("lora", stage="ppo", reward_model="x", include_effective_tokens_per_second=True)
        )


def predict_cfg(train_overrides, out, **extra) -> dict:
    cfg = train_overrides("lora")
    for key in ("dataset", "max_steps", "learning_rate", "lr_scheduler_type", "logging_steps", "save_steps"):
        cfg.pop(key)
    cfg.update(
        eval_dataset="toy",
        do_train=False,
        do_predict=True,
        predict_with_generate=True,
        do_sample=False,
        max_new_tokens=6,
        output_dir=str(out),
        per_device_eval_batch_size=4,
    )
    return {**cfg, **extra}


def test_eval_num_beams_sets_the_beams_of_predict(train_overrides, tmp_path, monkeypatch):
    from transformers import GenerationMixin

    seen = []
    original = GenerationMixin.generate

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        seen.append((kwargs.get("num_beams"), out.shape[0], kwargs["input_ids"].shape[0]))
        return out

    monkeypatch.setattr(GenerationMixin, "generate", spy)
    run_training(load_config(None, predict_cfg(train_overrides, tmp_path / "greedy")))
    assert seen and all(beams == 1 for beams, _, _ in seen)
    seen.clear()
    beams = run_training(load_config(None, predict_cfg(train_overrides, tmp_path / "beams", eval_num_beams=3)))
    assert seen and all(b == 3 and rows == batch for b, rows, batch in seen)  # beam search, best beam returned
    rows = (beams / run_folder.PREDICTIONS_FILE).read_text(encoding="utf-8").splitlines()
    assert len(rows) == 8


def test_eval_num_beams_without_predict_is_refused(train_overrides):
    from tuneforge.config.validate import check_stage

    cfg = load_config(None, train_overrides("lora", eval_num_beams=4))
    with pytest.raises(UserError, match="does not predict"):
        check_stage(cfg)


from test_stages import stage_cfg, stage_data  # noqa: E402, F401  (fixtures: tiny pairs / kto / text datasets)


@pytest.mark.parametrize("stage", ["pt", "rm", "dpo", "kto"])
def test_effective_tokens_per_second_in_every_trainer_stage(stage, stage_cfg):  # noqa: F811
    out = run_training(load_config(None, stage_cfg(stage, max_steps=2, include_effective_tokens_per_second=True)))
    results = json.loads(run_folder.done_path(out).read_text(encoding="utf-8"))
    assert results["effective_tokens_per_sec"] > 0 and results["train_runtime"] > 0


def test_trackers_with_stage_ppo_are_refused_not_ignored(train_overrides):
    """ppo runs its own loop, with no Trainer callbacks: a tracker would receive nothing, so it is refused."""
    with pytest.raises(UserError, match="report_to is for the Trainer-based stages"):
        load_config(None, train_overrides("lora", stage="ppo", reward_model="x", report_to="all"))
    assert load_config(None, train_overrides("lora", stage="ppo", reward_model="x", report_to="none"))
