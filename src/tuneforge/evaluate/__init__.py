"""Evaluation: multiple-choice benchmarks from local task folders (or lm-eval tasks), generation metrics, predict.

Entry points for the CLI and the Web UI: `run_eval(cfg, progress=None) -> dict` (benchmarks) and
`run_predict(cfg, progress=None) -> dict` (generate over a dataset, BLEU / ROUGE). See docs/evaluation.md.
"""

from tuneforge.evaluate.evaluator import run_eval
from tuneforge.evaluate.predict import run_predict

__all__ = ["run_eval", "run_predict"]
