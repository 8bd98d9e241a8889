"""The on-disk layout of a run folder: the one module that names its files (as torchtune's checkpointer owns its).

```
<output_dir>/
  config.yaml                  the flat config that made the run, secrets masked        write_config / read_config
  trainer_log.jsonl            one JSON record per logging step (the curve)              log_path / read_records
  train_results.json           written last, when the run completes                      is_complete / write_results
  training_loss.png            the loss plot                                             plot_path
  checkpoint-N/                a complete checkpoint: its trainer_state.json parses      complete_checkpoints
  tmp-checkpoint-N/            a checkpoint being written, renamed once complete         checkpoint_paths
  value_head.safetensors       PPO: the value head beside the policy (also in checkpoints)
  generated_predictions.jsonl  do_predict: a reply per sample; predict_results.json: the scores
  completions.jsonl            GRPO: sample completions and rewards per logging step     completions_path
  <split>_results.json         the Trainer's metrics (train / eval / all)                read_metrics
  pruned.json                  a sweep trial Optuna pruned: the step and value it stopped at   write_pruned
  <kind>_config.yaml, <kind>.log   a Web UI job's config (train: config.yaml) and its output
  .tuneforge-outputs.json      the names the runs in this folder wrote (what overwrite_output_dir may remove)
```

Everything else is the model folder transformers / peft write (config.json or adapter_config.json, weights,
tokenizer). Only the standard library and yaml: every layer may ask, from the trainer to the Web UI.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
from pathlib import Path

import yaml

CONFIG_FILE = "config.yaml"
LOG_FILE = "trainer_log.jsonl"  # written by train.callbacks.JsonlLogCallback and the PPO loop
DONE_FILE = "train_results.json"  # the Trainer's save_metrics("train"), or the PPO loop's results
PLOT_FILE = "training_loss.png"
STATE_FILE = "trainer_state.json"  # in a checkpoint, written last: a readable one marks the checkpoint complete
CHECKPOINT_PREFIX = "checkpoint"  # transformers' PREFIX_CHECKPOINT_DIR
STAGING_PREFIX = "tmp-checkpoint"
VALUE_HEAD_FILE = "value_head.safetensors"  # PPO
PPO_OPTIMIZER_FILE = "optimizer.pt"  # PPO checkpoints: optimizer + scheduler state
PREDICTIONS_FILE = "generated_predictions.jsonl"
PREDICT_RESULTS_FILE = "predict_results.json"
OUTPUTS_FILE = ".tuneforge-outputs.json"
COMPLETIONS_FILE = "completions.jsonl"  # GRPO: sample completions with their rewards, at each logging step
PRUNED_FILE = "pruned.json"  # a sweep trial stopped early by its pruner (train/sweep_report.py)
# The names a run writes under our own layout (and the Trainer's results / state files): a previous run's, even
# one that was killed before it listed its outputs, or a LLaMA-Factory run's. The model files transformers / peft
# save are a run's only when its outputs file lists them: a user's own README.md or config.json is not ours.
RUN_FILES = (
    CONFIG_FILE,
    LOG_FILE,
    DONE_FILE,
    PLOT_FILE,
    "training_eval_loss.png",
    "all_results.json",
    "eval_results.json",
    STATE_FILE,
    VALUE_HEAD_FILE,
    PREDICTIONS_FILE,
    PREDICT_RESULTS_FILE,
    COMPLETIONS_FILE,
    PRUNED_FILE,
)
RUN_RECORDS = (LOG_FILE, DONE_FILE, STATE_FILE, "all_results.json")  # a folder holding one of these held a run
MODEL_FILE_PATTERNS = (
    "config.json",
    "generation_config.json",
    "*.safetensors",
    "*.safetensors.index.json",
    "pytorch_model*.bin",
    "adapter_config.json",
    "adapter_model.bin",
    "README.md",  # peft's model card
    "tokenizer*",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
    "training_args.bin",
)
_CHECKPOINT = re.compile(rf"^{CHECKPOINT_PREFIX}-(\d+)$")
_MODEL_FILES = ("adapter_config.json", "config.json")  # what transformers / peft save beside our files


# ---- config.yaml ---------------------------------------------------------------------------------------------
def config_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CONFIG_FILE


def write_config(run_dir: str | Path, data: dict) -> Path:
    """The config that made the run, as YAML (the caller masks secrets)."""
    path = config_path(run_dir)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def read_config(run_dir: str | Path) -> dict:
    """The run's config.yaml as a dict; empty when there is none or it does not parse into a mapping."""
    path = config_path(run_dir)
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def template_from_run(adapter_paths: list[str]) -> str | None:
    """The template a LoRA run was trained with, read from the config.yaml beside (or above) its adapter; the last
    adapter that names one wins."""
    for path in reversed(adapter_paths):
        for folder in (Path(path), Path(path).parent):
            template = read_config(folder).get("template")
            if template:
                return template
    return None


def job_config_path(run_dir: str | Path, kind: str) -> Path:
    """Where a queued job's config goes: a training run's own config.yaml, else `<kind>_config.yaml`."""
    return config_path(run_dir) if kind == "train" else Path(run_dir) / f"{kind}_config.yaml"


def job_log_path(run_dir: str | Path, kind: str) -> Path:
    """The job's stdout + stderr: `train.log`, `eval.log`, `export.log`."""
    return Path(run_dir) / f"{kind}.log"


# ---- completion --------------------------------------------------------------------------------------------
def done_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / DONE_FILE


def is_complete(run_dir: str | Path) -> bool:
    """The run finished (its results file is written last); a stopped or killed run is resumable instead."""
    return done_path(run_dir).is_file()


def write_results(run_dir: str | Path, metrics: dict) -> Path:
    """Mark a run of our own loop (PPO) complete, as the Trainer's `save_metrics("train")` does."""
    path = done_path(run_dir)
    path.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return path


def read_json_dict(path: str | Path) -> dict | None:
    """A JSON file holding an object, as a dict; None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_metrics(run_dir: str | Path, split: str) -> dict:
    """The Trainer's `<split>_results.json` (train / eval / all); empty when missing or unreadable."""
    return read_json_dict(Path(run_dir) / f"{split}_results.json") or {}


def write_pruned(run_dir: str | Path, step: int, value: float) -> Path:
    """Mark a sweep trial that its pruner stopped (the run then saves as usual, so it also looks complete)."""
    path = Path(run_dir) / PRUNED_FILE
    path.write_text(json.dumps({"step": step, "value": value}), encoding="utf-8")
    return path


def read_pruned(run_dir: str | Path) -> dict | None:
    """The pruned marker ({"step", "value"}), or None for a trial that was not pruned."""
    return read_json_dict(Path(run_dir) / PRUNED_FILE)


def plot_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / PLOT_FILE


# ---- trainer_log.jsonl -------------------------------------------------------------------------------------
def log_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / LOG_FILE


def read_records(run_dir: str | Path) -> list[dict]:
    """The lines of trainer_log.jsonl; a line still being written (no newline yet, or cut) is skipped."""
    path = log_path(run_dir)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            records.append(row)
    return records


def trim_log(run_dir: str | Path, step: int) -> None:
    """Resuming: drop log lines past the checkpoint's step so the curve has no duplicates (a line cut off by a
    kill -9 counts as past every checkpoint); GRPO's completions.jsonl likewise."""
    for path in (log_path(run_dir), completions_path(run_dir)):
        if path.is_file():
            lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            kept = [line for line in lines if _step_of(line) <= step]
            path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _step_of(line: str) -> float:
    """The step of one trainer_log.jsonl (or completions.jsonl) line; a line cut off by a kill -9 counts as past
    every checkpoint."""
    try:
        record = json.loads(line)
    except ValueError:
        return float("inf")
    return record.get("step", 0) if isinstance(record, dict) else float("inf")


def completions_path(run_dir: str | Path) -> Path:
    """GRPO's sample completions: one JSON line per completion, {"step", "prompt", "completion", "rewards",
    "reward", "advantage"}, the newest steps last."""
    return Path(run_dir) / COMPLETIONS_FILE


# ---- checkpoints -------------------------------------------------------------------------------------------
def checkpoint_paths(run_dir: str | Path, step: int) -> tuple[Path, Path]:
    """(`tmp-checkpoint-N`, `checkpoint-N`): where a checkpoint is written, and the name it gets once complete."""
    run_dir = Path(run_dir)
    return run_dir / f"{STAGING_PREFIX}-{step}", run_dir / f"{CHECKPOINT_PREFIX}-{step}"


def staging_dirs(run_dir: str | Path) -> list[Path]:
    """`tmp-checkpoint-*` folders: checkpoints being written, or left half-written by a killed run."""
    return list(Path(run_dir).glob(f"{STAGING_PREFIX}-*"))


def state_path(checkpoint: str | Path) -> Path:
    return Path(checkpoint) / STATE_FILE


def is_complete_checkpoint(checkpoint: str | Path) -> bool:
    """trainer_state.json exists and parses: a checkpoint cut off while writing it is not complete."""
    try:
        return isinstance(json.loads(state_path(checkpoint).read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        return False


def complete_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoint folders that finished writing, oldest first: every stage (the Trainer's and our PPO loop) writes
    `tmp-checkpoint-N` with trainer_state.json last and renames it, so only `checkpoint-N` with a readable state
    counts."""
    found = []
    for child in Path(run_dir).glob(f"{CHECKPOINT_PREFIX}-*"):
        match = _CHECKPOINT.match(child.name)
        if match and child.is_dir() and is_complete_checkpoint(child):
            found.append((int(match.group(1)), child))
    return [p for _, p in sorted(found)]


# ---- what a run wrote ---------------------------------------------------------------------------------------
def entries(run_dir: str | Path) -> set[str]:
    """The names in the folder now (none when it does not exist)."""
    run_dir = Path(run_dir)
    return {child.name for child in run_dir.iterdir()} if run_dir.is_dir() else set()


def _listed_outputs(run_dir: Path) -> set[str]:
    try:
        names = json.loads((run_dir / OUTPUTS_FILE).read_text(encoding="utf-8")).get("written", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {n for n in names if isinstance(n, str) and n and "/" not in n and n not in (".", "..")}


def record_outputs(run_dir: str | Path, before: set[str]) -> None:
    """List what this run wrote (the names that were not in the folder when it started) beside the earlier runs'."""
    run_dir = Path(run_dir)
    written = _listed_outputs(run_dir) | (entries(run_dir) - before - {OUTPUTS_FILE})
    (run_dir / OUTPUTS_FILE).write_text(json.dumps({"written": sorted(written)}, indent=1), encoding="utf-8")


def is_model_file(name: str) -> bool:
    """A name transformers / peft / a tokenizer save into a model folder (what a run's final save writes)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in MODEL_FILE_PATTERNS)


def run_outputs(run_dir: str | Path) -> set[str]:
    """The names in the folder that runs there wrote: listed in its outputs file; our own names and checkpoints;
    and, in a folder that holds a run's records (a LLaMA-Factory run's, or one of ours that was killed before it
    listed its outputs), the model files beside them."""
    run_dir = Path(run_dir)
    names, listed = entries(run_dir), _listed_outputs(run_dir)
    checkpoints = {n for n in names if _CHECKPOINT.match(n) or n.startswith(f"{STAGING_PREFIX}-")}
    was_run = bool(checkpoints) or any(n in names for n in RUN_RECORDS)
    return {
        n
        for n in names
        if n in RUN_FILES or n == OUTPUTS_FILE or n in checkpoints or n in listed or (was_run and is_model_file(n))
    }


def foreign_model_files(run_dir: str | Path) -> list[str]:
    """Model-file names in the folder that no run wrote: the user's own files, which a model save would replace."""
    ours = run_outputs(run_dir)
    return sorted(n for n in entries(run_dir) if is_model_file(n) and n not in ours)


def remove_run_outputs(run_dir: str | Path) -> list[str]:
    """overwrite_output_dir: remove what earlier runs wrote here (their checkpoints, model files, logs, results);
    every other file and folder stays. Returns the names left in place."""
    run_dir = Path(run_dir)
    # the records and the outputs file go last: a retry after a crash half way still knows the rest as a run's
    ours = sorted(run_outputs(run_dir) - {OUTPUTS_FILE}, key=lambda n: (n in RUN_RECORDS, n))
    for name in ours:
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    (run_dir / OUTPUTS_FILE).unlink(missing_ok=True)
    return sorted(entries(run_dir))


# ---- finding runs ------------------------------------------------------------------------------------------
def find_run_dirs(root: str | Path) -> list[Path]:
    """Run folders under root (a config.yaml beside a trainer_log.jsonl, a saved adapter / model or the results
    file), newest first; checkpoints and the Web UI's job folders (`.jobs`, webui/context.py) are left out."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for cfg in root.glob("**/" + CONFIG_FILE):
        folder = cfg.parent
        if folder.name.startswith(f"{CHECKPOINT_PREFIX}-") or ".jobs" in folder.parts:
            continue
        if any((folder / name).exists() for name in (LOG_FILE, *_MODEL_FILES, DONE_FILE)):
            found.append(folder)
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
