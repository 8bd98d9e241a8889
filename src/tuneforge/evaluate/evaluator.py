"""`tuneforge eval`: a multiple-choice benchmark from a local task folder → results.json, results.log, a table."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.evaluate.lm_eval_adapter import run_lm_eval
from tuneforge.evaluate.mc import accuracy_table, encode_items, format_table, letter_token_ids, score_items
from tuneforge.evaluate.model import load_for_inference
from tuneforge.evaluate.predict import run_predict
from tuneforge.evaluate.prompt import get_wrapper
from tuneforge.evaluate.save_dir import RESULTS_FILE, check_save_dir, default_save_dir, write_results
from tuneforge.evaluate.tasks import load_task
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.evaluate.mc import Progress

logger = get_logger(__name__)


def run_eval(cfg: RunConfig, progress: Progress | None = None) -> dict:
    """Score the task's split; returns {"average", "categories", "subjects", "predictions", "table", "save_dir", ...}.
    `progress(done, total)` is called after each batch (the Web UI's progress bar)."""
    ev = cfg.evaluation
    if ev.eval_backend == "lm_eval":
        return run_lm_eval(cfg, progress)
    if ev.n_shot < 0:
        raise UserError("n_shot must be >= 0", where=cfg.where("n_shot"))
    if ev.batch_size < 1:
        raise UserError("batch_size must be at least 1", where=cfg.where("batch_size"))
    wrapper = get_wrapper(ev.lang)
    task = load_task(ev.task, ev.task_dir, ev.n_shot)  # every file checked before the model loads
    save_dir = check_save_dir(ev.save_dir or default_save_dir(cfg), cfg.finetuning.overwrite_output_dir)
    seed = int(cfg.training.get("seed", 42))

    start = time.monotonic()
    loaded = load_for_inference(cfg)
    tokenizer, template = loaded.tokenizer, loaded.template
    items = encode_items(
        task, template, tokenizer, wrapper, ev.n_shot, cfg.data.cutoff_len, seed, cfg.data.default_system
    )
    _, letter_ids = letter_token_ids(template, tokenizer)
    logits = score_items(
        loaded.model, items, letter_ids, tokenizer.pad_token_id, loaded.device, ev.batch_size, progress
    )
    scores = accuracy_table(task, items, logits)
    table = format_table(scores)
    scores.update(
        task=task.name,
        split=task.split,
        lang=ev.lang,
        n_shot=ev.n_shot,
        shots_used=round(sum(i.shots for i in items) / max(len(items), 1), 2),
        model=cfg.model.model_name_or_path,
        adapter=cfg.model.adapter_name_or_path,
        template=template.name,
        seconds=round(time.monotonic() - start, 2),
    )
    write_results(save_dir, json.dumps(scores, indent=2, ensure_ascii=False), table)
    logger.info("%s: average accuracy %.2f%% over %d questions", task.name, scores["average"], scores["total"])
    return {**scores, "table": table, "save_dir": str(save_dir)}


def eval_command(cfg: RunConfig) -> str:
    """`tuneforge eval`: the benchmark when `task` is set, else predict on eval_dataset (or dataset)."""
    if cfg.evaluation.task:
        result = run_eval(cfg)
        if "table" in result and cfg.evaluation.eval_backend == "tuneforge":
            head = f"{result['task']} ({result['split']} split, {result['n_shot']}-shot, {result['total']} questions)"
            return f"{head}\n{result['table']}\nSaved to {Path(result['save_dir']) / RESULTS_FILE}"
        return f"{result['table']}\nSaved to {result['save_dir']}"
    if cfg.data.eval_dataset or cfg.data.dataset:
        result = run_predict(cfg)
        scores = ", ".join(
            f"{k[len('predict_') :]} {result[k]:.2f}"
            for k in result
            if k.startswith("predict_") and isinstance(result[k], float) and "-" in k
        )
        return f"{result['predict_samples']} predictions: {scores}\nSaved to {result['predictions_file']}"
    raise UserError(
        "nothing to evaluate",
        fix="set task (a benchmark folder under task_dir, e.g. task: sample) or eval_dataset (generate and score)",
    )
