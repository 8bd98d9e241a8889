"""Batching of encoded SFT rows (plain or packed): pad to the longest row, or flatten the batch padding-free.

Rows may carry `position_ids` (neat packing); then no `attention_mask` goes to the model and transformers
derives the per-sample causal mask from where the positions restart. `flatten=True` concatenates the whole batch
into one row with position_ids (no padding at all): right for attention kernels that take variable-length
sequences (flash-attention); sdpa / eager run it too, with a square mask over the whole row.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from tuneforge.data.sft import IGNORE_INDEX


@dataclass
class SftCollator:
    pad_token_id: int
    pad_to_multiple_of: int | None = None
    flatten: bool = False
    label_pad_token_id: int = IGNORE_INDEX  # the padding's label: the pad id itself with ignore_pad_token_for_loss off
    trained_logits_only: bool = False

    def __call__(self, features: list[dict]) -> dict:
        batch = self._flatten(features) if self.flatten else self._pad(features)
        if self.trained_logits_only:
            keep_trained_logits(batch)  # padding labelled with the pad id is trained: it is kept
        return batch

    def _flatten(self, features: list[dict]) -> dict:
        import torch  # heavy: imported by the process that batches, not by `import`

        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for f in features:
            n = len(f["input_ids"])
            ids += list(f["input_ids"])
            labels += [IGNORE_INDEX, *list(f["labels"])[1:]]  # no row learns the next row's start (no padding here)
            positions += list(f["position_ids"]) if "position_ids" in f else list(range(n))
        as_row = lambda values: torch.tensor([values], dtype=torch.long)  # noqa: E731
        return {"input_ids": as_row(ids), "labels": as_row(labels), "position_ids": as_row(positions)}

    def _pad(self, features: list[dict]) -> dict:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        packed = "position_ids" in features[0]
        batch: dict[str, list] = {"input_ids": [], "labels": []}
        batch["position_ids" if packed else "attention_mask"] = []
        for f in features:
            n = len(f["input_ids"])
            pad = longest - n
            batch["input_ids"].append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            batch["labels"].append(list(f["labels"]) + [self.label_pad_token_id] * pad)
            if packed:  # the padding is a sample of its own: positions restart, nothing attends to it
                batch["position_ids"].append(list(f["position_ids"]) + list(range(pad)))
            else:
                mask = list(f["attention_mask"]) if "attention_mask" in f else [1] * n
                batch["attention_mask"].append(mask + [0] * pad)
        return {key: torch.tensor(value, dtype=torch.long) for key, value in batch.items()}


def keep_trained_logits(batch: dict, ignore_index: int = IGNORE_INDEX) -> dict:
    """Logits (and the loss) only where a token is trained: transformers' boolean `logits_to_keep` (B, S) runs the
    LM head on those positions alone, and `shift_labels` holds their targets, so the (B, S, vocab) logits of the
    prompts and the padding are never built. The loss is the same; the memory and compute of the head shrink by
    the untrained share. Batches with nothing to train are left as they are."""
    import torch

    labels = batch["labels"]
    shifted = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], ignore_index)], dim=1)
    keep = shifted != ignore_index
    if keep.any():
        batch["logits_to_keep"] = keep
        batch["shift_labels"] = shifted[keep]
    return batch


def needs_whole_logits(cfg) -> bool:
    """Where SFT keeps every position's logits: evaluation reads them (compute_accuracy, do_predict), and accelerate
    dispatches a streamed dataset's batches by slicing every tensor along dim 0 (a boolean mask does not survive)."""
    return bool(cfg.finetuning.compute_accuracy or cfg.training.get("do_predict") or cfg.data.streaming)


def supports_trained_logits(model) -> bool:
    """Whether the model's forward slices with transformers' `slice_logits_to_keep` (which takes the boolean mask);
    models of remote code or patched forwards (Liger) may not."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        return "slice_logits_to_keep(" in inspect.getsource(base.forward)  # an instance patch (Liger) counts
    except (OSError, TypeError):
        return False


def supports_padding_free(attn_implementation: str | None) -> bool:
    """Whether the attention runs a whole batch as one row of samples without padding at no extra cost
    (variable-length kernels); sdpa / eager would build a square mask over the whole row instead."""
    return bool(attn_implementation) and attn_implementation.startswith(("flash_attention", "kernels-community"))


def sft_collator(
    tokenizer,
    data_args,
    attn_implementation: str | None,
    use_cpu: bool,
    trained_logits_only: bool = False,
    padding_free: bool = False,
) -> SftCollator:
    """The collator for an SFT run: padding-free (flattened) batches where asked (`padding_free`: the model's
    attention splits them per sample, model/varlen_attention.py) or with neat packing where the attention
    implementation runs variable-length sequences natively, padded batches otherwise. `ignore_pad_token_for_loss`
    off (LLaMA-Factory's key): the padding is labelled with the pad id, so the loss trains on it too."""
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return SftCollator(
        pad_token_id=pad_token_id,
        pad_to_multiple_of=None if use_cpu else 8,
        flatten=padding_free or (bool(data_args.neat_packing) and supports_padding_free(attn_implementation)),
        label_pad_token_id=IGNORE_INDEX if data_args.ignore_pad_token_for_loss else pad_token_id,
        trained_logits_only=trained_logits_only,
    )
