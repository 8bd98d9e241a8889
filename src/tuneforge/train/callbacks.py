"""Trainer callbacks: trainer_log.jsonl (what the Web UI and plots read) and clean stops."""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback

LOG_FILE = "trainer_log.jsonl"


class JsonlLogCallback(TrainerCallback):
    """One JSON line per logging step: step, loss, eval_loss, lr, epoch, tokens seen, elapsed, remaining."""

    def __init__(self, output_dir: str | Path):
        self.path = Path(output_dir) / LOG_FILE
        self.start = time.monotonic()
        self.start_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()
        self.start_step = state.global_step
        if not state.is_world_process_zero:
            return
        if self.path.is_file():  # resuming: drop lines past the checkpoint so the curve has no duplicates
            kept = [line for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
            kept = [line for line in kept if json.loads(line).get("step", 0) <= state.global_step]
            self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

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
        for key in ("eval_accuracy", "grad_norm"):
            if key in logs:
                record[key] = logs[key]
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
