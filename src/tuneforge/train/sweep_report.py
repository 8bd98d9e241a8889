"""A sweep trial's link to its Optuna study: report the metric at each evaluation (train_loss: at each log) and stop
cleanly when the pruner says so, leaving `pruned.json` so the sweep's driver tells Optuna PRUNED.

Attached by train/common.py only when the environment names a trial (sweep/study.py: the driver sets it through
the job's meta["env"]); a plain `tuneforge train` never loads Optuna.
"""

from __future__ import annotations

from pathlib import Path

# transformers at the top: the callback subclasses TrainerCallback. Only train/common.py imports this module.
from transformers import TrainerCallback

from tuneforge.sweep.study import reporting_trial
from tuneforge.utils import run_folder
from tuneforge.utils.logging import get_logger

logger = get_logger(__name__)


class SweepReport(TrainerCallback):
    def __init__(self, trial, metric: str, output_dir: str | Path):
        self.trial = trial
        self.metric = metric
        self.output_dir = Path(output_dir)
        self.ended = False  # the final evaluation after training is the driver's to read, not an intermediate value
        self.pruned = False

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.metric != "train_loss" and metrics:
            self._report(metrics.get(self.metric), state, control)
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.metric == "train_loss" and logs and "loss" in logs:
            self._report(logs["loss"], state, control)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        self.ended = True

    def _report(self, value, state, control) -> None:
        if value is None or self.ended or self.pruned or not state.is_world_process_zero:
            return
        self.trial.report(float(value), state.global_step)
        if self.trial.should_prune():
            logger.warning("pruned by the sweep at step %d (%s %.4g)", state.global_step, self.metric, value)
            run_folder.write_pruned(self.output_dir, state.global_step, float(value))
            self.pruned = True
            control.should_training_stop = True


def sweep_callbacks(output_dir: str | Path) -> list:
    """[SweepReport] inside a sweep trial, else []."""
    found = reporting_trial()
    if found is None:
        return []
    trial, metric = found
    return [SweepReport(trial, metric, output_dir)]
