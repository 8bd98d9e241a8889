"""Evaluation group: multiple-choice benchmarks from local task folders (LLaMA-Factory's EvaluationArguments).

The seed is the training group's `seed` (one key for both, as Hugging Face owns that name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tuneforge.config.fields import opt


@dataclass
class EvaluationArguments:
    task: str | None = opt(
        None,
        "Benchmark: a folder under task_dir, optionally with the split (sample, sample_test, mmlu_test). "
        "With eval_backend lm_eval: lm-eval task names, comma separated.",
    )
    task_dir: str = opt("evaluation", "Folder holding the benchmark folders (lm_eval: extra task YAML files).")
    batch_size: int = opt(4, "Questions scored per forward pass in `tuneforge eval`.")
    lang: Literal["en", "zh"] = opt("en", "Language of the question wrapper (instructions, 'Answer:').")
    n_shot: int = opt(5, "Worked examples from the dev split placed before each question.")
    save_dir: str | None = opt(None, "Where results.json and results.log go. Default: saves/eval/<task>.")
    download_mode: Literal["reuse_dataset_if_exists", "reuse_cache_if_exists", "force_redownload"] = opt(
        "reuse_dataset_if_exists",
        "LF: how evaluation datasets are downloaded. TuneForge reads task folders from task_dir and downloads nothing.",
        refused=(
            "benchmarks are read from the task folders under task_dir; nothing is downloaded, so there is nothing to"
            " re-download",
            "remove download_mode, or put fresh task files in task_dir",
        ),
    )
    eval_backend: Literal["tuneforge", "lm_eval"] = opt(
        "tuneforge", "tuneforge: our task folders; lm_eval: lm-evaluation-harness tasks (its data must be local)."
    )
