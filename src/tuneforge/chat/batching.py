"""Batched decoding: one scheduler thread owns the model and decodes every waiting reply together, one token per
step for all rows, each with its own sampling settings, streaming each row's tokens to its own streamer.

A row joins between two steps: its prompt is prefilled (with the other newcomers, left-padded) and its KV cache
is left-padded into the running batch's; a row that ends (end-of-turn token, max_new_tokens, its `stop` callback:
a stop string or a client gone) leaves the batch at once and frees its cache. Greedy rows write what `generate`
writes for the prompt alone (same positions, masked padding).

Work that cannot share a batch (a vision model's replies, beam search) runs alone on the same thread through
`run_alone`, so the model is only ever used by this one thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# generate keywords a batched row honours; anything else (num_beams > 1, ...) runs alone
BATCHED_KEYS = frozenset(
    {"do_sample", "temperature", "top_p", "top_k", "repetition_penalty", "max_new_tokens", "eos_token_id"}
    | {"pad_token_id", "num_beams"}
)


def can_batch(kwargs: dict) -> bool:
    """Whether generate keywords can run as a row of the shared batch."""
    return set(kwargs) <= BATCHED_KEYS and kwargs.get("num_beams", 1) == 1


@dataclass
class Row:
    """One reply: its prompt, its generate keywords, where its tokens go (a TextStreamer: put / end), and when it
    must stop early. The scheduler sets `error` and `finished`."""

    ids: list[int]
    settings: dict
    streamer: Any
    stop: Callable[[], bool]
    error: BaseException | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    tokens: list[int] = field(default_factory=list)


def _sampling_key(settings: dict) -> tuple:
    return tuple(settings.get(k) for k in ("do_sample", "temperature", "top_k", "top_p", "repetition_penalty"))


def _distribution(scores, settings: dict):
    """Each row's candidate tokens and their probabilities under generate's sampling: temperature, then top-k, then
    top-p (the smallest set of the most likely tokens whose probability reaches top_p, at least one), computed over
    the top-k candidates only instead of sorting the whole vocabulary."""
    import torch

    if settings.get("temperature", 1.0) != 1.0:
        scores = scores / settings["temperature"]
    k = settings.get("top_k") or 0
    values, ids = scores.topk(min(k, scores.shape[-1])) if k else scores.sort(dim=-1, descending=True)
    probs = torch.softmax(values, dim=-1)
    if settings.get("top_p", 1.0) < 1.0:
        tail = probs.flip(-1).cumsum(-1).flip(-1)  # the probability of this token and every less likely one
        drop = tail <= 1 - settings["top_p"]
        drop[:, 0] = False
        probs = torch.softmax(values.masked_fill(drop, float("-inf")), dim=-1)
    return ids, probs


def _sample(scores, settings: dict):
    """One token per row, drawn from `_distribution`."""
    import torch

    ids, probs = _distribution(scores, settings)
    return ids.gather(-1, torch.multinomial(probs, 1))[:, 0]


class Batcher:
    """The scheduler thread. `submit(row)` queues a reply; `run_alone(fn)` runs fn on the thread between steps."""

    def __init__(self, model, max_batch_size: int, pad_token_id: int | None):
        self.model, self.max_batch_size = model, max_batch_size
        self.pad_token_id = pad_token_id if pad_token_id is not None else 0
        self._queue: queue.Queue = queue.Queue()
        self.active = 0  # rows in the running batch
        self.widest = 0  # the most rows decoded together so far
        self._thread = threading.Thread(target=self._loop, name="tuneforge-batcher", daemon=True)
        self._thread.start()

    def submit(self, row: Row) -> None:
        self._queue.put(row)

    def close(self) -> None:
        """End the thread (it lets go of the model); replies still running or queued end with an error."""
        self._queue.put(None)

    def run_alone(self, fn: Callable[[], None]) -> threading.Event:
        """Queue fn for the scheduler thread; the event is set once it has run."""
        done = threading.Event()
        self._queue.put((fn, done))
        return done

    # ---- the scheduler thread -----------------------------------------------------------------------------------
    def _loop(self) -> None:
        import torch

        with torch.inference_mode():
            batch = None
            while True:
                waiting = [self._queue.get()] if batch is None else []
                while True:  # everything queued now joins (up to the batch limit)
                    try:
                        waiting.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                rows = [w for w in waiting if isinstance(w, Row)]
                if None in waiting:
                    closed = RuntimeError("the chat engine was closed")
                    for row in (batch.rows if batch else []) + rows:
                        _finish(row, closed)
                    for _fn, done in (w for w in waiting if isinstance(w, tuple)):
                        done.set()
                    self.active = 0
                    return
                for fn, done in (w for w in waiting if isinstance(w, tuple)):
                    try:
                        fn()
                    finally:
                        done.set()
                room = self.max_batch_size - (len(batch.rows) if batch else 0)
                for later in rows[room:]:  # over the limit: back in the queue for a later step
                    self._queue.put(later)
                rows = rows[: max(room, 0)]
                try:
                    if rows and (batch is None or batch.can_join):
                        batch = _Batch.start(self, rows) if batch is None else batch.join(rows)
                    elif rows:
                        for row in rows:
                            self._queue.put(row)  # this cache cannot take rows mid-flight: after this batch
                    if batch is not None:
                        self.active = len(batch.rows)
                        self.widest = max(self.widest, self.active)
                        batch.step()
                except BaseException as exc:  # noqa: BLE001 (every row of the batch hears of it)
                    for row in (batch.rows if batch else []) + rows:
                        _finish(row, exc)
                    batch, self.active = None, 0
                    continue
                if batch is not None and not batch.rows:
                    batch = None
                self.active = len(batch.rows) if batch else 0


def _finish(row: Row, error: BaseException | None = None) -> None:
    if not row.finished.is_set():
        row.error = error
        row.streamer.end()
        row.finished.set()


class _Batch:
    """The running rows, their KV cache, attention mask and positions, and the next token of each."""

    def __init__(self, owner: Batcher, rows, cache, mask, positions, last):
        self.owner, self.rows, self.cache, self.mask, self.positions, self.last = (
            owner,
            rows,
            cache,
            mask,
            positions,
            last,
        )

    @property
    def can_join(self) -> bool:
        from transformers.cache_utils import DynamicLayer

        return all(type(layer) is DynamicLayer for layer in self.cache.layers)

    @classmethod
    def start(cls, owner: Batcher, rows: list[Row]) -> _Batch:
        """Prefill the rows' prompts (left-padded) and choose each row's first token."""
        import torch
        from transformers import DynamicCache

        model = owner.model
        device = model.device
        width = max(len(r.ids) for r in rows)
        ids = torch.full((len(rows), width), owner.pad_token_id, dtype=torch.long, device=device)
        mask = torch.zeros((len(rows), width), dtype=torch.long, device=device)
        for i, row in enumerate(rows):
            ids[i, width - len(row.ids) :] = torch.tensor(row.ids, device=device)
            mask[i, width - len(row.ids) :] = 1
            row.streamer.put(torch.tensor(row.ids))  # the prompt: a skip_prompt streamer drops it
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
        cache = DynamicCache(config=model.config)
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        batch = cls(owner, list(rows), cache, mask, positions[:, -1] + 1, None)
        batch.last = batch._choose(out.logits[:, -1, :].float())
        batch._emit()
        return batch

    def join(self, rows: list[Row]) -> _Batch:
        """Prefill newcomers as a batch of their own, then left-pad the shorter cache and stack them."""
        import torch

        new = _Batch.start(self.owner, rows)
        if not new.rows:
            return self
        if not self.rows:
            return new
        width = max(self.mask.shape[1], new.mask.shape[1])

        def pad(t, dim_len: int):  # left-pad dim -2 (cache) or -1 (mask) to `width`
            missing = width - dim_len
            if missing == 0:
                return t
            if t.dim() == 2:
                return torch.cat([t.new_zeros((t.shape[0], missing)), t], dim=1)
            return torch.cat([t.new_zeros((*t.shape[:2], missing, t.shape[3])), t], dim=2)

        for mine, theirs in zip(self.cache.layers, new.cache.layers, strict=True):
            mine.keys = torch.cat([pad(mine.keys, mine.keys.shape[2]), pad(theirs.keys, theirs.keys.shape[2])])
            mine.values = torch.cat(
                [pad(mine.values, mine.values.shape[2]), pad(theirs.values, theirs.values.shape[2])]
            )
        self.mask = torch.cat([pad(self.mask, self.mask.shape[1]), pad(new.mask, new.mask.shape[1])])
        self.positions = torch.cat([self.positions, new.positions])
        self.last = torch.cat([self.last, new.last])
        self.rows += new.rows
        return self

    def step(self) -> None:
        """One token for every row."""
        if not self.rows:
            return
        import torch

        self.mask = torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=1)
        out = self.owner.model(
            input_ids=self.last[:, None],
            attention_mask=self.mask,
            position_ids=self.positions[:, None],
            cache=self.cache,  # grown in place
            use_cache=True,
        )
        self.positions = self.positions + 1
        self.last = self._choose(out.logits[:, -1, :].float())
        self._emit()

    def _choose(self, logits):
        """Each row's next token under its own settings (greedy: argmax, as generate). Rows with the same settings
        are warped and sampled together; a repetition penalty reads each row's own history."""
        import torch

        chosen = torch.empty(len(self.rows), dtype=torch.long, device=logits.device)
        groups: dict[tuple, list[int]] = {}
        for i, row in enumerate(self.rows):
            groups.setdefault(_sampling_key(row.settings), []).append(i)
        for members in groups.values():
            settings = self.rows[members[0]].settings
            index = torch.tensor(members, device=logits.device)
            scores = logits[index]
            if settings.get("repetition_penalty", 1.0) != 1.0:
                from transformers import RepetitionPenaltyLogitsProcessor

                penalty = RepetitionPenaltyLogitsProcessor(settings["repetition_penalty"])
                scores = torch.cat(
                    [
                        penalty(torch.tensor([self.rows[i].ids + self.rows[i].tokens], device=logits.device), s[None])
                        for i, s in zip(members, scores, strict=True)
                    ]
                )
            chosen[index] = _sample(scores, settings) if settings.get("do_sample") else scores.argmax(dim=-1)
        return chosen

    def _emit(self) -> None:
        """Stream each row's new token; rows that ended leave the batch (and its cache)."""
        import torch

        keep = []
        for i, row in enumerate(self.rows):
            token = int(self.last[i])
            row.tokens.append(token)
            row.streamer.put(torch.tensor([token]))
            eos = row.settings.get("eos_token_id") or []
            eos = [eos] if isinstance(eos, int) else eos
            ended = token in eos or len(row.tokens) >= row.settings.get("max_new_tokens", 20)
            if ended or row.stop():
                _finish(row)
            else:
                keep.append(i)
        if len(keep) == len(self.rows):
            return
        index = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        self.rows = [self.rows[i] for i in keep]
        self.cache.batch_select_indices(index)
        self.mask, self.positions, self.last = self.mask[index], self.positions[index], self.last[index]
        if self.rows:  # drop the columns that are padding for every row left
            first = int(self.mask.any(dim=0).nonzero()[0])
            if first:
                self.mask = self.mask[:, first:]
                for layer in self.cache.layers:
                    layer.keys, layer.values = layer.keys[:, :, first:], layer.values[:, :, first:]
