"""compute_accuracy: token accuracy of the next-token argmax on the trained (response) tokens during evaluation.

The Trainer keeps only the argmax of each batch (preprocess_logits_for_metrics), never the full logits;
it is reported as eval_accuracy beside eval_loss (and lands in the run's JSONL log).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

IGNORE_INDEX = -100


def argmax_logits(logits, labels):
    """Called by the Trainer per eval batch: (batch, seq, vocab) logits → (batch, seq) token ids."""
    if isinstance(logits, (list, tuple)):  # models that return extra outputs put the logits first
        logits = logits[0]
    return logits.argmax(dim=-1)


def token_accuracy(predictions, labels) -> float:
    """Mean over samples of the share of response tokens whose next-token argmax is the label (as LLaMA-Factory)."""
    import numpy as np  # only an eval step with compute_accuracy needs it

    predictions, labels = np.asarray(predictions), np.asarray(labels)
    scores = []
    for pred, label in zip(predictions[:, :-1], labels[:, 1:], strict=True):  # logits at t predict the token t+1
        mask = label != IGNORE_INDEX
        if mask.any():
            scores.append(float(np.mean(pred[mask] == label[mask])))
    return float(np.mean(scores)) if scores else 0.0


def compute_accuracy(eval_prediction) -> dict[str, float]:
    return {"accuracy": token_accuracy(eval_prediction.predictions, eval_prediction.label_ids)}


def accuracy_kwargs(cfg: RunConfig) -> dict:
    """Trainer keywords for compute_accuracy: true (empty otherwise)."""
    if not cfg.finetuning.compute_accuracy:
        return {}
    return {"compute_metrics": compute_accuracy, "preprocess_logits_for_metrics": argmax_logits}
