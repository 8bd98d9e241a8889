"""Packing: the knapsack keeps every sample once within capacity; packed labels and positions are exact; the
collator pads or flattens without changing what the model computes."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tuneforge.data.collate import SftCollator
from tuneforge.data.packing import greedy_knapsack, pack_columns, padding_stats
from tuneforge.data.sft import IGNORE_INDEX


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=0, max_size=60), st.integers(50, 120))
def test_knapsack_places_every_sample_once_within_capacity(lengths, capacity):
    bins = greedy_knapsack(lengths, capacity)
    placed = sorted(i for b in bins for i in b)
    assert placed == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= capacity for b in bins)
    assert all(b == sorted(b) for b in bins)
    # a new bin opens only when the sample fits in no open bin: any two bins together overflow the capacity
    loads = [sum(lengths[i] for i in b) for b in bins]
    assert all(loads[i] + loads[j] > capacity for i in range(len(loads)) for j in range(i + 1, len(loads)))


def test_knapsack_rejects_a_sample_longer_than_capacity():
    with pytest.raises(ValueError, match="capacity"):
        greedy_knapsack([3, 9], 8)


def _columns(lengths, seed=0):
    rng = random.Random(seed)
    ids = [[rng.randrange(3, 100) for _ in range(n)] for n in lengths]
    labels = []
    for row in ids:
        cut = rng.randrange(1, len(row))  # prompt masked, response trained
        labels.append([IGNORE_INDEX] * cut + row[cut:])
    return {"input_ids": ids, "labels": labels, "attention_mask": [[1] * n for n in lengths]}


@pytest.mark.parametrize("neat", [False, True])
def test_packed_rows_hold_each_sample_with_its_own_labels(neat):
    columns = _columns([5, 9, 3, 12, 7, 2, 8])
    packed = pack_columns(columns, cutoff_len=16, neat=neat)
    assert all(len(row) <= 16 for row in packed["input_ids"])
    assert sum(map(len, packed["input_ids"])) == sum(map(len, columns["input_ids"]))
    found = []
    for r, row in enumerate(packed["input_ids"]):
        labels = packed["labels"][r]
        if neat:
            positions = packed["position_ids"][r]
            starts = [k for k, p in enumerate(positions) if p == 0]
            assert "attention_mask" not in packed
        else:
            assert packed["attention_mask"][r] == [1] * len(row)
            assert "position_ids" not in packed
            starts = _starts_by_content(row, columns["input_ids"])
        for a, b in zip(starts, [*starts[1:], len(row)], strict=True):
            i = columns["input_ids"].index(row[a:b])
            assert labels[a] == IGNORE_INDEX  # never learn the start of a sample from the one before
            assert labels[a + 1 : b] == columns["labels"][i][1:]  # every other label exactly as unpacked
            if neat:
                assert packed["position_ids"][r][a:b] == list(range(b - a))
            found.append(i)
    assert sorted(found) == list(range(7))


def _starts_by_content(row, samples):
    starts, k = [], 0
    while k < len(row):
        n = next(len(s) for s in samples if row[k : k + len(s)] == s)
        starts.append(k)
        k += n
    return starts


def test_collator_pads_plain_rows_with_a_mask_and_packed_rows_with_fresh_positions():
    collate = SftCollator(pad_token_id=0)
    plain = collate([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "attention_mask": [1, 1, 1]},
                     {"input_ids": [8], "labels": [8], "attention_mask": [1]}])  # fmt: skip
    assert plain["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert plain["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert plain["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    packed = collate([{"input_ids": [5, 6, 7, 8], "labels": [-100, 6, -100, 8], "position_ids": [0, 1, 0, 1]},
                      {"input_ids": [9, 4], "labels": [-100, 4], "position_ids": [0, 1]}])  # fmt: skip
    assert "attention_mask" not in packed
    assert packed["position_ids"].tolist() == [[0, 1, 0, 1], [0, 1, 0, 1]]
    assert packed["labels"].tolist() == [[-100, 6, -100, 8], [-100, 4, -100, -100]]
    rounded = SftCollator(pad_token_id=0, pad_to_multiple_of=8)([{"input_ids": [1, 2, 3], "labels": [1, 2, 3]}])
    assert rounded["input_ids"].shape == (1, 8)


def test_flattened_batch_gives_the_same_loss_as_the_padded_batch(tiny_model_dir):
    """Padding-free: one row, positions restarting per sample, no mask → same logits per sample (sdpa here)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    model.config.use_cache = False  # as in training: with a cache, transformers does not look for packed positions
    columns = _columns([11, 4, 17, 9], seed=3)
    features = [{k: columns[k][i] for k in columns} for i in range(4)]
    padded = SftCollator(pad_token_id=0)(features)
    flat = SftCollator(pad_token_id=0, flatten=True)(features)
    assert flat["input_ids"].shape == (1, 41) and "attention_mask" not in flat
    assert flat["position_ids"][0, :11].tolist() == list(range(11))
    with torch.no_grad():
        loss_padded = model(**padded).loss
        loss_flat = model(**flat).loss
        loss_leaky = model(input_ids=flat["input_ids"], labels=flat["labels"]).loss  # one long sequence
    assert torch.allclose(loss_padded, loss_flat, atol=1e-5), (loss_padded, loss_flat)
    assert not torch.allclose(loss_padded, loss_leaky, atol=1e-3)


def test_padding_stats_counts_pad_tokens_per_batch():
    assert padding_stats([4, 2, 3, 3], batch_size=2) == {"rows": 4, "tokens": 12, "padding": 2}
