"""Show an encoded example as the model sees it, with the trained tokens marked, and where its thinking went."""

from __future__ import annotations

import os
import re
import sys
from itertools import groupby

from tuneforge.data.sft import IGNORE_INDEX

TRAIN_OPEN, TRAIN_CLOSE = "⟦", "⟧"
SHIFT_OPEN, SHIFT_CLOSE = "⟪", "⟫"
_MASKED, _TRAINED, _SHIFTED = 0, 1, 2
_DIM, _GREEN, _RESET = "\x1b[2m", "\x1b[32m", "\x1b[0m"
_THINK_TRAINED, _THINK_MASKED = "\x1b[35m", "\x1b[2;35m"  # think blocks: magenta (trained) / dim magenta (masked)


def render_label_mask(
    input_ids: list[int], labels: list[int], tokenizer, color: bool | None = None, thought_words=None
) -> str:
    """The decoded input with masked spans and trained spans told apart, then "tokens: N, trained: M".

    Color (default: when stdout is a terminal and NO_COLOR is unset): masked dim, trained green; with
    `thought_words`, think blocks magenta (trained) or dim magenta (masked). Without color, trained spans are wrapped
    in ⟦ ⟧. Each run of ids is decoded with its special tokens. A trained label that differs from its input id
    (efficient_eos: the EOS learnt after a reply) is shown as ⟪label⟫ (green) before the masked input token it
    stands for.
    """
    if len(input_ids) != len(labels):
        raise ValueError(f"input_ids ({len(input_ids)}) and labels ({len(labels)}) differ in length")
    if color is None:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    runs = _runs(input_ids, labels, tokenizer)
    blocks = think_blocks("".join(text for _, text, _ in runs), thought_words) if thought_words and color else []
    parts, pos = [], 0
    for kind, text, note in runs:
        if kind == _SHIFTED:  # the labels are learnt in place of these input tokens
            note = f"{SHIFT_OPEN}{note}{SHIFT_CLOSE}"
            parts.append(f"{_GREEN}{note}{_RESET}{_DIM}{text}{_RESET}" if color else note + text)
        elif color:
            parts.append(_colored(text, pos, kind == _TRAINED, blocks))
        else:
            parts.append(f"{TRAIN_OPEN}{text}{TRAIN_CLOSE}" if kind == _TRAINED else text)
        pos += len(text)
    n_trained = sum(label != IGNORE_INDEX for label in labels)
    shifted = sum(label not in (IGNORE_INDEX, i) for i, label in zip(input_ids, labels, strict=True))
    summary = f"tokens: {len(input_ids)}, trained: {n_trained}"
    if shifted:
        summary += f" ({shifted} of them learnt in place of another input token, shown as ⟪label⟫)"
    return "".join(parts) + "\n" + summary


def think_blocks(text: str, thought_words) -> list[tuple[int, int, bool]]:
    """(start, end, empty) of each think block in `text`: opening word … closing word, or a closing word alone
    (GLM-4.7's empty block)."""
    opening, closing = (re.escape(w.strip()) for w in thought_words)
    found = re.finditer(f"(?:{opening}(.*?))?{closing}", text, re.DOTALL)
    return [(m.start(), m.end(), not (m.group(1) or "").strip()) for m in found]


def thinking_line(input_ids: list[int], labels: list[int], tokenizer, template, conv) -> str | None:
    """One line: the thinking settings in effect and where the sample's think blocks went (trained / masked, the
    empty ones the template inserted). None when neither the template nor the sample has anything to do with
    thinking."""
    words = template.thought_words
    runs = _runs(input_ids, labels, tokenizer)
    text = "".join(t for _, t, _ in runs)
    trained = "".join(("1" if kind != _MASKED else "0") * len(t) for kind, t, _ in runs)
    blocks = think_blocks(text, words)
    replies = list(conv.messages[1::2])
    in_data = [b for m in replies for b in think_blocks(m.content, words)]
    given = sum(1 for m in replies if m.reasoning) + len(in_data)
    if not (blocks or given or template.is_reasoning):
        return None
    name = f"template {template.name} ({template.kind})"
    if template.name == "tokenizer":
        settings = [f"enable_thinking {_yaml(template.enable_thinking)}"]
        settings += [f"preserve_thinking {_yaml(template.preserve_thinking)}", f"{name}: its Jinja places the thinking"]
    elif template.is_reasoning:
        settings = [f"enable_thinking {_yaml(template.enable_thinking)}"]
        settings += [f"preserve_thinking {_yaml(template.preserve_thinking)}", name]
    else:
        settings = [f"{name}: enable_thinking / preserve_thinking have no effect"]
    where = {"trained": 0, "masked": 0, "partly trained": 0}
    empty = {"trained": 0, "masked": 0, "partly trained": 0}
    for start, end, is_empty in blocks:
        marks = set(trained[start:end])
        state = "trained" if marks == {"1"} else "masked" if marks == {"0"} else "partly trained"
        (empty if is_empty else where)[state] += 1
    listed = ", ".join(f"{n} {state}" for state, n in where.items() if n) or "none"
    n_empty = sum(empty.values())
    inserted = n_empty - sum(1 for _, _, is_empty in in_data if is_empty)
    settings.append(f"think blocks: {listed}")
    if inserted > 0:
        states = [state for state, n in empty.items() if n]
        place = {"masked": "masked, in the prompt", "trained": "trained, in the reply"}.get(states[0], states[0])
        detail = place if len(states) == 1 else ", ".join(f"{n} {state}" for state, n in empty.items() if n)
        settings.append(f"empty think block inserted: {inserted} ({detail})")
    else:
        settings.append("empty think block inserted: none")
    return "thinking: " + " · ".join(settings)


def _runs(input_ids: list[int], labels: list[int], tokenizer) -> list[tuple[int, str, str]]:
    """(kind, decoded input text, decoded labels for a shifted run) per run of equally-labelled tokens."""
    out = []
    for kind, run in groupby(zip(input_ids, labels, strict=True), key=_kind):
        run = list(run)
        note = _decode(tokenizer, [label for _, label in run]) if kind == _SHIFTED else ""
        out.append((kind, _decode(tokenizer, [i for i, _ in run]), note))
    return out


def _colored(text: str, pos: int, trained: bool, blocks: list[tuple[int, int, bool]]) -> str:
    """A run's text in its color, think blocks (global offsets) in theirs."""
    out, cut = [], pos
    base, think = (_GREEN, _THINK_TRAINED) if trained else (_DIM, _THINK_MASKED)
    for start, end, _ in blocks:
        start, end = max(start, pos), min(end, pos + len(text))
        if start >= end:
            continue
        if start > cut:
            out.append(f"{base}{text[cut - pos : start - pos]}{_RESET}")
        out.append(f"{think}{text[start - pos : end - pos]}{_RESET}")
        cut = end
    if cut < pos + len(text) or not text:
        out.append(f"{base}{text[cut - pos :]}{_RESET}")
    return "".join(out)


def _yaml(value) -> str:
    return "null" if value is None else str(value).lower()


def _kind(pair: tuple[int, int]) -> int:
    input_id, label = pair
    return _MASKED if label == IGNORE_INDEX else _TRAINED if label == input_id else _SHIFTED


def _decode(tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
