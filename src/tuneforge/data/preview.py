"""Show an encoded example as the model sees it, with the trained tokens marked."""

from __future__ import annotations

import os
import sys
from itertools import groupby

from tuneforge.data.sft import IGNORE_INDEX

TRAIN_OPEN, TRAIN_CLOSE = "⟦", "⟧"
SHIFT_OPEN, SHIFT_CLOSE = "⟪", "⟫"
_MASKED, _TRAINED, _SHIFTED = 0, 1, 2
_DIM, _GREEN, _RESET = "\x1b[2m", "\x1b[32m", "\x1b[0m"


def render_label_mask(input_ids: list[int], labels: list[int], tokenizer, color: bool | None = None) -> str:
    """The decoded input with masked spans and trained spans told apart, then "tokens: N, trained: M".

    Color (default: when stdout is a terminal and NO_COLOR is unset): masked dim, trained green. Without color,
    trained spans are wrapped in ⟦ ⟧. Each run of ids is decoded with its special tokens. A trained label that
    differs from its input id (efficient_eos: the EOS learnt after a reply) is shown as ⟪label⟫ (green) before
    the masked input token it stands for.
    """
    if len(input_ids) != len(labels):
        raise ValueError(f"input_ids ({len(input_ids)}) and labels ({len(labels)}) differ in length")
    if color is None:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    parts = []
    pairs = list(zip(input_ids, labels, strict=True))
    for kind, run in groupby(pairs, key=_kind):
        run = list(run)
        text = _decode(tokenizer, [i for i, _ in run])
        if kind == _SHIFTED:  # the labels are learnt in place of these input tokens
            note = f"{SHIFT_OPEN}{_decode(tokenizer, [label for _, label in run])}{SHIFT_CLOSE}"
            parts.append(f"{_GREEN}{note}{_RESET}{_DIM}{text}{_RESET}" if color else note + text)
        elif color:
            parts.append(f"{_GREEN if kind == _TRAINED else _DIM}{text}{_RESET}")
        else:
            parts.append(f"{TRAIN_OPEN}{text}{TRAIN_CLOSE}" if kind == _TRAINED else text)
    n_trained = sum(label != IGNORE_INDEX for label in labels)
    shifted = sum(label not in (IGNORE_INDEX, i) for i, label in pairs)
    summary = f"tokens: {len(input_ids)}, trained: {n_trained}"
    if shifted:
        summary += f" ({shifted} of them learnt in place of another input token, shown as ⟪label⟫)"
    return "".join(parts) + "\n" + summary


def _kind(pair: tuple[int, int]) -> int:
    input_id, label = pair
    return _MASKED if label == IGNORE_INDEX else _TRAINED if label == input_id else _SHIFTED


def _decode(tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
