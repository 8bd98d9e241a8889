"""Generation metrics and token accuracy against the reference implementations LLaMA-Factory uses."""

from __future__ import annotations

import logging

import pytest

from tuneforge.evaluate.accuracy import IGNORE_INDEX, token_accuracy
from tuneforge.evaluate.metrics import generation_metrics, sample_scores, words

PAIRS = [
    ("The cat sat on the mat.", "The cat is on the mat."),
    ("今天天气很好，我们去公园散步吧。", "今天天气不错，我们去公园走走。"),
    ("我是 Forge，由 Acme Labs 开发的助手。", "我是 Forge，一个由 Acme Labs 开发的 AI 助手。"),
    ("Hello world! 你好世界？ Yes.", "Hello, world. 你好，世界！"),
    ("a", "a b c d e"),  # shorter than four characters' worth of n-grams on one side
    ("the the the the", "the cat"),  # repeated n-grams: ROUGE-N counts each once, BLEU clips
    ("1 2 3 1 2 3", "1 2 3"),  # longer than the reference: no brevity penalty
    ("我爱北京天安门", "我爱北京天安门"),
    ("", "nothing predicted"),
    ("no reference", ""),
    ("   ", "spaces only"),
    ("完全不同的句子", "something else entirely"),
]


def reference_scores(prediction: str, label: str) -> dict[str, float]:
    """LLaMA-Factory's ComputeSimilarity for one pair, with nltk, jieba and rouge-chinese themselves."""
    import jieba
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    from rouge_chinese import Rouge

    jieba.setLogLevel(logging.WARNING)
    hypothesis, reference = list(jieba.cut(prediction)), list(jieba.cut(label))
    if len(" ".join(hypothesis).split()) == 0 or len(" ".join(reference).split()) == 0:
        result = {"rouge-1": {"f": 0.0}, "rouge-2": {"f": 0.0}, "rouge-l": {"f": 0.0}}
    else:
        result = Rouge().get_scores(" ".join(hypothesis), " ".join(reference))[0]
    scores = {k: round(v["f"] * 100, 4) for k, v in result.items()}
    bleu = sentence_bleu([list(label)], list(prediction), smoothing_function=SmoothingFunction().method3)
    scores["bleu-4"] = round(bleu * 100, 4)
    return scores


@pytest.mark.parametrize(("prediction", "label"), PAIRS)
def test_scores_match_nltk_and_rouge_chinese(prediction, label):
    assert sample_scores(prediction, label) == pytest.approx(reference_scores(prediction, label), abs=1e-9)


def test_scores_are_not_trivial():
    """The pairs above cover partial matches (0 < score < 100) for every metric, not only 0 and 100."""
    table = [sample_scores(p, lab) for p, lab in PAIRS]
    for key in ("bleu-4", "rouge-1", "rouge-2", "rouge-l"):
        assert any(0 < row[key] < 100 for row in table), key


def test_chinese_is_segmented_into_words():
    segmented = words("我们去公园散步")
    assert "".join(segmented) == "我们去公园散步"
    assert 1 < len(segmented) < len("我们去公园散步")  # words, not characters


def test_corpus_scores_are_the_mean_of_sample_scores():
    predictions, labels = [p for p, _ in PAIRS], [lab for _, lab in PAIRS]
    refs = [reference_scores(p, lab) for p, lab in PAIRS]
    got = generation_metrics(predictions, labels)
    for key in got:
        assert got[key] == pytest.approx(sum(r[key] for r in refs) / len(refs), abs=1e-4)


def test_token_accuracy_matches_a_direct_count():
    import torch

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 5, generator=gen)
    labels = torch.randint(0, 5, (3, 7), generator=gen)
    labels[:, :3] = IGNORE_INDEX  # the prompt
    labels[2, 5:] = IGNORE_INDEX  # padding
    labels[1, 3:] = logits[1].argmax(-1).roll(1)[3:]  # sample 1: every response token predicted right
    preds = logits.argmax(-1)
    per_sample = []
    for i in range(3):
        hits = [preds[i, t - 1] == labels[i, t] for t in range(1, 7) if labels[i, t] != IGNORE_INDEX]
        per_sample.append(sum(bool(h) for h in hits) / len(hits))
    assert per_sample[1] == 1.0
    assert token_accuracy(preds.numpy(), labels.numpy()) == pytest.approx(sum(per_sample) / 3)
