"""N-shot multiple-choice scoring: the answer is the choice letter whose first reply token has the highest logit."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from tuneforge.data.conversation import ASSISTANT, USER, Conversation, Message
from tuneforge.errors import UserError
from tuneforge.evaluate.model import forward_kwargs, left_pad
from tuneforge.evaluate.prompt import Wrapper, build_conversation
from tuneforge.evaluate.tasks import CHOICES, Question, Task

Progress = Callable[[int, int], None]


@dataclass
class Item:
    subject: str  # subject key
    question: Question
    ids: list[int]  # prompt ids, ending right before the token that tells the letters apart
    shots: int


def letter_token_ids(template, tokenizer) -> tuple[list[int], list[int]]:
    """(reply prefix, one token id per letter): the reply "A" / "B" / ... encoded as the template encodes replies;
    the ids where the four replies first differ. The prefix (e.g. a space some templates put before a reply) goes
    at the end of every prompt so the letters are compared at the same position."""
    replies = []
    for letter in CHOICES:
        conv = Conversation([Message(USER, "?"), Message(ASSISTANT, letter)])
        replies.append(template.encode_multiturn(tokenizer, conv)[0][1])
    k = 0
    while all(len(r) > k for r in replies) and len({r[k] for r in replies}) == 1:
        k += 1
    ids = [r[k] if len(r) > k else None for r in replies]
    if None in ids or len(set(ids)) != len(ids):
        raise UserError(
            f"template '{template.name}' does not give the letters {', '.join(CHOICES)} distinct reply tokens",
            where="template",
            fix="choose the template the model was trained with",
        )
    return replies[0][:k], ids


def encode_items(
    task: Task,
    template,
    tokenizer,
    wrapper: Wrapper,
    n_shot: int,
    cutoff_len: int,
    seed: int,
    default_system: str | None = None,
) -> list[Item]:
    """Every question of the task's split as prompt ids. Shots are drawn from the dev split (seeded); when a prompt
    would pass cutoff_len, shots are dropped (oldest first) until it fits."""
    prefix, _ = letter_token_ids(template, tokenizer)
    rng = random.Random(seed)
    items = []
    for subject in task.subjects:
        dev = subject.splits.get("dev", [])
        for q in subject.splits[task.split]:
            pool = [d for d in dev if d is not q]
            shots = rng.sample(pool, min(n_shot, len(pool))) if n_shot > 0 else []
            for k in range(len(shots), -1, -1):
                conv = build_conversation(q, shots[len(shots) - k :], subject.name, wrapper)
                ids = template.encode_prompt(tokenizer, conv, default_system) + prefix
                if len(ids) <= cutoff_len or k == 0:
                    break
            items.append(Item(subject=subject.key, question=q, ids=ids, shots=k))
    return items


def score_items(
    model, items: list[Item], letter_ids: list[int], pad_id: int, device: str, batch_size: int, progress=None
) -> list[list[float]]:
    """The logits of the letter tokens at the end of each prompt, batched (left padding, longest first)."""
    import torch  # heavy: only a process that scores imports it

    names = forward_kwargs(model)
    extra = {"logits_to_keep": 1} if "logits_to_keep" in names else {}
    order = sorted(range(len(items)), key=lambda i: -len(items[i].ids))
    out: list[list[float]] = [[] for _ in items]
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = left_pad([items[i].ids for i in chunk], pad_id, device, names)
            logits = model(**batch, **extra).logits[:, -1, :]
            picked = logits[:, letter_ids].float().cpu().tolist()
            for i, row in zip(chunk, picked, strict=True):
                out[i] = row
            if progress is not None:
                progress(min(start + batch_size, len(order)), len(order))
    return out


def accuracy_table(task: Task, items: list[Item], logits: list[list[float]]) -> dict:
    """Per-subject and per-category accuracy (in %) and their average over all questions, like LLaMA-Factory."""
    by_subject: dict[str, list[bool]] = {s.key: [] for s in task.subjects}
    predictions: dict[str, list[str]] = {s.key: [] for s in task.subjects}
    for item, row in zip(items, logits, strict=True):
        letter = CHOICES[max(range(len(row)), key=row.__getitem__)]
        predictions[item.subject].append(letter)
        by_subject[item.subject].append(letter == item.question.answer)
    categories: dict[str, list[bool]] = {c: [] for c in task.categories}
    for s in task.subjects:
        categories[s.category] += by_subject[s.key]
    everything = [c for s in task.subjects for c in by_subject[s.key]]
    return {
        "average": _pct(everything),
        "categories": {c: _pct(v) for c, v in categories.items()},
        "subjects": {
            s.key: {
                "name": s.name,
                "category": s.category,
                "accuracy": _pct(by_subject[s.key]),
                "correct": sum(by_subject[s.key]),
                "total": len(by_subject[s.key]),
            }
            for s in task.subjects
        },
        "predictions": predictions,
        "total": len(everything),
    }


def _pct(values: list[bool]) -> float:
    return round(100.0 * sum(values) / len(values), 2) if values else 0.0


def format_table(scores: dict) -> str:
    """A readable table: the average, then each category, then each subject (aligned for CJK names too)."""
    rows = [("Average", "", scores["average"], scores["total"])]
    rows += [(c, "category", v, None) for c, v in scores["categories"].items()]
    rows += [(s["name"], s["category"], s["accuracy"], s["total"]) for s in scores["subjects"].values()]
    width = max(_width(r[0]) for r in rows)
    cat_width = max(8, *(_width(r[1]) for r in rows))
    lines = [f"{_pad('', width)}  {_pad('', cat_width)}  accuracy  questions"]
    for name, cat, acc, n in rows:
        lines.append(f"{_pad(name, width)}  {_pad(cat, cat_width)}  {acc:8.2f}  {'' if n is None else n:>9}")
    return "\n".join(lines)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
