"""Metric `eval:<task>`: after a trial trains, `tuneforge eval` scores its model on the benchmark as a second job
(kind eval) in the trial's folder; the trial's value is the benchmark's average accuracy (results.json)."""

from __future__ import annotations

from pathlib import Path

from tuneforge.config.loader import load_config
from tuneforge.evaluate.save_dir import RESULTS_FILE
from tuneforge.utils import run_folder


def eval_save_dir(run_dir: str | Path, task: str) -> Path:
    return Path(run_dir) / f"eval-{task.replace('/', '_')}"


def eval_config(trial_config: dict, run_dir: str | Path, task: str) -> dict:
    """The trial's own config pointed at what it trained: its adapter on the same base (LoRA / OFT), or its
    folder as the model (full / freeze); the loading keys (quantization, template, cutoff_len) stay the trial's."""
    cfg = load_config(None, trial_config)
    out = {**trial_config, "task": task, "save_dir": str(eval_save_dir(run_dir, task)), "overwrite_output_dir": True}
    if cfg.finetuning.uses_adapter:
        earlier = cfg.model.adapter_name_or_path
        out["adapter_name_or_path"] = f"{earlier},{run_dir}" if earlier else str(run_dir)
    else:
        out["model_name_or_path"] = str(run_dir)
        out.pop("adapter_name_or_path", None)  # merged into the trained model already
    return out


def read_accuracy(run_dir: str | Path, task: str) -> float | None:
    """The benchmark's average accuracy (percent), or None when the eval wrote no results."""
    value = (run_folder.read_json_dict(eval_save_dir(run_dir, task) / RESULTS_FILE) or {}).get("average")
    return float(value) if value is not None else None
