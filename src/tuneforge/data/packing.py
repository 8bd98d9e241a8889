"""Packing for SFT: several encoded samples share one sequence of at most cutoff_len tokens.

`packing`: samples are concatenated; attention may cross from one sample into the next (cheap, slightly leaky).
`neat_packing`: each sample keeps its own positions (position_ids restart at 0) and no token attends across a
sample boundary. The packed rows carry `position_ids` and no `attention_mask`; transformers then builds a
block-diagonal causal mask from the restarts (sdpa / eager) or runs variable-length kernels (flash-attention).

Labels stay exact: each sample's own labels, with the first token of every sample set to IGNORE_INDEX so no
sample learns to predict the start of the next (that token is never a target in an unpacked batch either).
"""

from __future__ import annotations

from bisect import bisect_left, insort

from tuneforge.data.eval_sets import each_eval_set
from tuneforge.data.sft import IGNORE_INDEX
from tuneforge.data.vision_conversation import IMAGES_COLUMN
from tuneforge.errors import UserError


def greedy_knapsack(lengths: list[int], capacity: int) -> list[list[int]]:
    """Best-fit decreasing: indices grouped into bins whose lengths sum to at most `capacity`.
    Each sample goes into the fullest bin it still fits; the indices in a bin keep the dataset's order."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, bin number), sorted
    for i in order:
        size = lengths[i]
        if size > capacity:
            raise ValueError(f"sample {i} has {size} tokens, more than the capacity {capacity}")
        k = bisect_left(free, (size, -1))
        if k < len(free):
            room, b = free.pop(k)
        else:
            room, b = capacity, len(bins)
            bins.append([])
        bins[b].append(i)
        if room - size > 0:
            insort(free, (room - size, b))
    return [sorted(b) for b in bins]


def pack_columns(columns: dict[str, list], cutoff_len: int, neat: bool) -> dict[str, list]:
    """input_ids / labels (/ attention_mask) of encoded samples → packed rows of at most `cutoff_len` tokens."""
    input_ids, labels = columns["input_ids"], columns["labels"]
    bins = greedy_knapsack([len(ids) for ids in input_ids], cutoff_len)
    out: dict[str, list] = {"input_ids": [], "labels": []}
    out["position_ids" if neat else "attention_mask"] = []
    for members in bins:
        row_ids: list[int] = []
        row_labels: list[int] = []
        row_pos: list[int] = []
        for i in members:
            row_ids += input_ids[i]
            row_labels += [IGNORE_INDEX, *labels[i][1:]]
            row_pos += range(len(input_ids[i]))
        out["input_ids"].append(row_ids)
        out["labels"].append(row_labels)
        if neat:
            out["position_ids"].append(row_pos)
        else:
            out["attention_mask"].append([1] * len(row_ids))
    return out


def pack_dataset(dataset, cutoff_len: int, neat: bool):
    """A Hugging Face Dataset of encoded SFT samples → a Dataset of packed rows."""
    from datasets import Dataset  # heavy: only a run that packs needs it

    if not isinstance(dataset, Dataset):
        raise UserError(
            "packing needs the whole dataset in memory (it sorts samples by length)",
            where="packing",
            fix="set streaming: false, or packing: false",
        )
    packed = pack_columns({k: dataset[k] for k in ("input_ids", "labels")}, cutoff_len, neat)
    return Dataset.from_dict(packed)


def padding_stats(lengths: list[int], batch_size: int) -> dict[str, int]:
    """Tokens and padding when rows of these lengths are batched in order and padded to each batch's longest."""
    real = sum(lengths)
    padded = sum(
        max(lengths[i : i + batch_size]) * len(lengths[i : i + batch_size]) for i in range(0, len(lengths), batch_size)
    )
    return {"rows": len(lengths), "tokens": real, "padding": padded - real}


def pack_sft_sets(args, train, eval_set):
    """(train, eval) packed when the data arguments ask for `packing` or `neat_packing`, else unchanged."""
    if not (args.packing or args.neat_packing):
        return train, eval_set
    if train is not None and IMAGES_COLUMN in (train.column_names or []):
        raise UserError(
            "packing puts several rows in one sequence, and a vision model's rows carry their pictures apart",
            where="neat_packing" if args.neat_packing else "packing",
            fix="set packing: false for a vision-language model",
        )
    neat = bool(args.neat_packing)
    pack = lambda ds: pack_dataset(ds, args.cutoff_len, neat) if ds is not None else None  # noqa: E731
    return pack(train), each_eval_set(eval_set, pack)  # eval_on_each_dataset: each set packed alone
