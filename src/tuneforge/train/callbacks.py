"""Trainer callbacks: the run's JSONL log (what the Web UI and plots read) and clean stops."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from pathlib import Path

# transformers at the top: the callbacks subclass TrainerCallback. Only the stage recipes (train/common.py) import
# this module, and train/run.py imports a recipe only when a run starts.
from transformers import EarlyStoppingCallback, TrainerCallback

from tuneforge.utils import run_folder

# What the preference / reward stages log (TRL's names), kept in the records when present.
STAGE_METRICS = (
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "accuracy",
    "margin",
    "mean_reward",
    "kl",
    "sft_loss",
    # grpo (TRL's GRPOTrainer); per reward function: rewards/<name>/mean and /std (STAGE_METRIC_PREFIXES)
    "reward",
    "reward_std",
    "completions/mean_length",
    "completions/clipped_ratio",
    "clip_ratio/region_mean",
    "entropy",
)
STAGE_METRIC_PREFIXES = ("rewards/",)


class JsonlLogCallback(TrainerCallback):
    """One JSON line per logging step: step, loss, eval_loss, lr, epoch, tokens seen, elapsed, remaining."""

    def __init__(self, output_dir: str | Path):
        self.output_dir = Path(output_dir)
        self.path = run_folder.log_path(output_dir)
        self.start = time.monotonic()
        self.start_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()
        self.start_step = state.global_step
        if not state.is_world_process_zero:
            return
        # resuming: drop lines past the checkpoint so the curve has no duplicates (a torn last line, kill -9, too)
        run_folder.trim_log(self.output_dir, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if not any(k in logs for k in ("loss", "eval_loss")):
            return
        elapsed = time.monotonic() - self.start
        done = state.global_step - self.start_step
        left = max(state.max_steps - state.global_step, 0)
        record = {
            "step": state.global_step,
            "total_steps": state.max_steps,
            "loss": logs.get("loss"),
            "eval_loss": logs.get("eval_loss"),
            "lr": logs.get("learning_rate"),
            "epoch": round(state.epoch or 0.0, 4),
            "tokens_seen": int(getattr(state, "num_input_tokens_seen", 0) or 0),
            "elapsed": round(elapsed, 2),
            "remaining": round(elapsed / done * left, 2) if done else None,
            "percentage": round(100 * state.global_step / state.max_steps, 2) if state.max_steps else None,
        }
        for key in ("eval_accuracy", "grad_norm") + STAGE_METRICS + tuple("eval_" + k for k in STAGE_METRICS):
            if key in logs:
                record[key] = logs[key]
        for key in logs:
            if key.removeprefix("eval_").startswith(STAGE_METRIC_PREFIXES):
                record[key] = logs[key]
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


class TrainingStopped(KeyboardInterrupt):
    """Raised after a requested stop, once the checkpoint is saved: the run is resumable, not finished."""


class StopSignals:
    """The signal half of a clean stop, shared by `StopOnSignal` (Trainer stages) and our own PPO loop.

    SIGTERM / SIGINT (the Web UI's Abort, or Ctrl-C) only set `requested`; the loop finishes its step, saves a
    checkpoint and raises `stopped(step)`. A second signal restores the previous handlers and raises
    KeyboardInterrupt at once. `install()` does nothing outside the main thread; `restore()` puts the old handlers
    back. Also a context manager (install on enter, restore on exit).
    """

    SIGNALS = ("SIGTERM", "SIGINT")

    def __init__(self):
        self.requested = False
        self._previous: dict = {}

    def request_stop(self, signum=None, frame=None):
        if self.requested:  # second signal: give up waiting for the step
            self.restore()
            raise KeyboardInterrupt
        self.requested = True

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                sig = getattr(signal, name)
                self._previous[sig] = signal.signal(sig, self.request_stop)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def __enter__(self) -> StopSignals:
        self.install()
        return self

    def __exit__(self, *exc) -> None:
        self.restore()


def stopped(step: int) -> TrainingStopped:
    """Log the one resumable-stop line and return the exception that ends the run (exit 130 from the CLI)."""
    logging.getLogger(__name__).warning(
        "stopped at step %d; checkpoint-%d saved. Run the same config again to resume.", step, step
    )
    return TrainingStopped(f"stopped at step {step}")


class StopOnSignal(StopSignals, TrainerCallback):
    """SIGTERM / SIGINT (the Web UI's Abort, or Ctrl-C) → finish the current step, save a checkpoint, stop.

    The handler only sets a flag (`StopSignals`); at the next step end the trainer is told to save and stop.
    Training then ends with `TrainingStopped` (a KeyboardInterrupt: exit code 130 from the CLI) instead of writing
    the final model and the results file, so running the same config again resumes from that checkpoint. A second
    signal stops at once. Handlers are installed at train begin (main thread only) and restored at train end.
    """

    def on_train_begin(self, args, state, control, **kwargs):
        self.install()

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_log = True
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kwargs):
        self.restore()
        if self.requested:
            raise stopped(state.global_step)


def early_stopping_callbacks(early_stopping_steps: int | None) -> list:
    """LLaMA-Factory's `early_stopping_steps`: transformers' EarlyStoppingCallback with that patience (evaluations
    without improvement of metric_for_best_model, eval loss by default: train/arguments.py)."""
    if early_stopping_steps is None:
        return []
    return [EarlyStoppingCallback(early_stopping_patience=early_stopping_steps)]
