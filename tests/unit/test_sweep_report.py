"""The pruning callback against a stored study, without training: each "trial" is the real callback fed the
evaluations a training run would make, in its own view of the study (as a trial's process loads it from the
environment); the driver's side asks and tells. A trial worse than the completed ones stops with pruned.json."""

from __future__ import annotations

from types import SimpleNamespace

from tuneforge.sweep.spec import parse_sweep_spec
from tuneforge.sweep.study import open_study, quiet_optuna, reporting_trial, trial_env
from tuneforge.train.sweep_report import SweepReport, sweep_callbacks
from tuneforge.utils import run_folder

BASE = {"model_name_or_path": "m", "dataset": "identity", "template": "chatml", "val_size": 2, "output_dir": "o"}
STEPS = range(1, 5)


def sweep(tmp_path, pruner: str):
    data = {"pruner": pruner, "params": {"learning_rate": {"low": 1.0e-4, "high": 1.0e-2, "log": True}}}
    spec = parse_sweep_spec(data, BASE)
    return spec, open_study(tmp_path, spec)


def run_trial(tmp_path, spec, study, loss: float) -> int | None:
    """Ask a trial, 'train' it through the callback (evaluations at STEPS, stopping when told), tell the result;
    the step it was pruned at, or None."""
    trial = study.ask()
    trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
    run_dir = tmp_path / f"trial-{trial.number}"
    run_dir.mkdir()
    callback = SweepReport(*reporting_trial(trial_env(tmp_path, spec, trial.number)), run_dir)
    for step in STEPS:
        state = SimpleNamespace(global_step=step, is_world_process_zero=True)
        control = SimpleNamespace(should_training_stop=False)
        callback.on_evaluate(None, state, control, metrics={"eval_loss": loss})
        if control.should_training_stop:
            assert run_folder.read_pruned(run_dir) == {"step": step, "value": loss}
            assert study.get_trials(deepcopy=False)[trial.number].intermediate_values == {
                s: loss for s in range(1, step + 1)
            }
            study.tell(trial.number, state=quiet_optuna().trial.TrialState.PRUNED)
            return step
    callback.on_train_end(None, None, None)
    callback.on_evaluate(None, state, control, metrics={"eval_loss": 99.0})  # the final evaluation: not reported
    assert study.get_trials(deepcopy=False)[trial.number].intermediate_values == {s: loss for s in STEPS}
    assert run_folder.read_pruned(run_dir) is None
    study.tell(trial.number, loss)
    return None


def test_median_prunes_a_bad_trial_at_its_first_evaluation(tmp_path):
    spec, study = sweep(tmp_path, "median")
    assert run_trial(tmp_path, spec, study, 9.0) is None  # pruner_startup_trials 2: nothing to compare with yet
    assert [run_trial(tmp_path, spec, study, loss) for loss in (1.0, 1.2)] == [None, None]
    assert run_trial(tmp_path, spec, study, 0.9) is None  # better than the median: runs on
    assert run_trial(tmp_path, spec, study, 9.0) == 1


def test_hyperband_prunes_bad_trials_too(tmp_path):
    spec, study = sweep(tmp_path, "hyperband")
    assert [run_trial(tmp_path, spec, study, 1.0 + i / 10) for i in range(3)] == [None, None, None]
    assert any(run_trial(tmp_path, spec, study, 9.0) for _ in range(3))


def test_outside_a_sweep_no_callback(monkeypatch, tmp_path):
    monkeypatch.delenv("TUNEFORGE_SWEEP_STORAGE", raising=False)
    assert sweep_callbacks(tmp_path) == []
