"""Generation metrics as LLaMA-Factory reports them: BLEU-4 and ROUGE-1/2/L, Chinese segmented by jieba.

The definitions reproduce the reference libraries LLaMA-Factory calls (checked against them in
tests/unit/test_metrics.py):
- BLEU-4: nltk's `sentence_bleu([list(label)], list(pred), smoothing_function=SmoothingFunction().method3)` —
  over characters, uniform weights, brevity penalty, NIST geometric smoothing of empty n-gram orders.
- ROUGE-1/2/L: `rouge_chinese.Rouge().get_scores(" ".join(jieba.cut(pred)), " ".join(jieba.cut(label)))` —
  words from jieba (spaces dropped), ROUGE-N over the *sets* of n-grams, ROUGE-L over the longest common
  subsequence of the words, F = 2PR / (P + R + 1e-8).
Scores are in percent, each sample rounded to 4 decimals, then averaged.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence

KEYS = ("bleu-4", "rouge-1", "rouge-2", "rouge-l")


def words(text: str) -> list[str]:
    """jieba's segmentation (Chinese words; English split at spaces and punctuation), whitespace tokens dropped."""
    import jieba  # jieba loads its dictionary: only when metrics are computed

    if not getattr(words, "_quiet", False):
        jieba.setLogLevel(logging.WARNING)
        words._quiet = True
    return " ".join(jieba.cut(text)).split()


def _ngrams(tokens: Sequence, n: int) -> list[tuple]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def sentence_bleu4(reference: Sequence, hypothesis: Sequence) -> float:
    """BLEU-4 of one hypothesis against one reference (token sequences), with smoothing method 3."""
    if not hypothesis:
        return 0.0
    precisions = []  # (matches, total) per order
    for n in range(1, 5):
        hyp = Counter(_ngrams(hypothesis, n))
        ref = Counter(_ngrams(reference, n))
        matches = sum(min(count, ref[g]) for g, count in hyp.items())
        precisions.append((matches, max(1, sum(hyp.values()))))
    if precisions[0][0] == 0:
        return 0.0
    logs, k = [], 1
    for matches, total in precisions:
        if matches == 0:  # NIST geometric smoothing: 1 / (2^k * total) for the k-th empty order
            p = 1 / (2**k * total)
            k += 1
        else:
            p = matches / total
        logs.append(0.25 * math.log(p))
    c, r = len(hypothesis), len(reference)
    bp = 1.0 if c > r else math.exp(1 - r / c)
    return bp * math.exp(math.fsum(logs))


def _f(overlap: int, hyp: int, ref: int) -> float:
    p = overlap / hyp if hyp else 0.0
    r = overlap / ref if ref else 0.0
    return 2.0 * ((p * r) / (p + r + 1e-8))


def rouge_n(hyp: Sequence[str], ref: Sequence[str], n: int) -> float:
    h, r = set(_ngrams(hyp, n)), set(_ngrams(ref, n))
    return _f(len(h & r), len(h), len(r))


def lcs_length(x: Sequence, y: Sequence) -> int:
    if len(x) < len(y):
        x, y = y, x
    row = [0] * (len(y) + 1)
    for a in x:
        prev = 0
        for j, b in enumerate(y, 1):
            prev, row[j] = row[j], prev + 1 if a == b else max(row[j], row[j - 1])
    return row[-1]


def rouge_l(hyp: Sequence[str], ref: Sequence[str]) -> float:
    return _f(lcs_length(hyp, ref), len(hyp), len(ref))


def sample_scores(prediction: str, label: str) -> dict[str, float]:
    """The four scores of one pair, in percent (0 for ROUGE when either side has no words)."""
    hyp, ref = words(prediction), words(label)
    if hyp and ref:
        rouge = {"rouge-1": rouge_n(hyp, ref, 1), "rouge-2": rouge_n(hyp, ref, 2), "rouge-l": rouge_l(hyp, ref)}
    else:
        rouge = {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    scores = {"bleu-4": sentence_bleu4(list(label), list(prediction)), **rouge}
    return {k: round(v * 100, 4) for k, v in scores.items()}


def generation_metrics(predictions: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """Mean of each score over the pairs: {"bleu-4", "rouge-1", "rouge-2", "rouge-l"} in percent."""
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    if not predictions:
        return {k: 0.0 for k in KEYS}
    totals = dict.fromkeys(KEYS, 0.0)
    for prediction, label in zip(predictions, labels, strict=True):
        for key, value in sample_scores(prediction, label).items():
            totals[key] += value
    return {k: round(v / len(predictions), 4) for k, v in totals.items()}
