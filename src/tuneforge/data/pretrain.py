"""Continued pre-training: plain documents → EOS-terminated token streams → packed blocks of `cutoff_len`.

Packing never lets a document see another: each block carries `position_ids` that restart at 0 at every document
start, and no attention mask. transformers (5.x) reads restarting position ids as packed sequences and builds a
block-diagonal causal mask for sdpa / eager (and varlen kernels for flash attention). The first token of each
document gets no label, so nothing is learned across a document boundary either.
"""

from __future__ import annotations

from tuneforge.data.conversation import Conversation
from tuneforge.data.sft import IGNORE_INDEX


def document_text(conv: Conversation) -> str:
    """A pre-training row is usually one text column (read as a prompt); if it has more turns, they are joined."""
    return "\n".join(m.content for m in conv.messages)


def encode_document(conv: Conversation, tokenizer) -> dict:
    ids = tokenizer.encode(document_text(conv), add_special_tokens=False)
    if tokenizer.bos_token_id is not None:
        ids = [tokenizer.bos_token_id] + ids
    return {"input_ids": ids + [tokenizer.eos_token_id]}


def pack_documents(documents: list[list[int]], block_size: int) -> dict[str, list[list[int]]]:
    """Concatenate documents and cut into blocks of exactly `block_size` tokens (the remainder is dropped, unless
    there is less than one block in all: then one shorter block). Returns input_ids, labels and position_ids."""
    ids: list[int] = []
    positions: list[int] = []
    labels: list[int] = []
    for doc in documents:
        ids += doc
        positions += range(len(doc))
        labels += [IGNORE_INDEX] + doc[1:]
    if len(ids) < block_size:
        block_size = len(ids)
    out: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], "position_ids": []}
    for start in range(0, len(ids) - block_size + 1, block_size):
        end = start + block_size
        block_positions = positions[start:end]
        block_labels = labels[start:end]
        if block_positions[0] != 0:  # a document continues from the previous block: restart its positions here
            offset = block_positions[0]
            first_reset = next((i for i, p in enumerate(block_positions) if p == 0), len(block_positions))
            block_positions = [p - offset for p in block_positions[:first_reset]] + block_positions[first_reset:]
            block_labels = [IGNORE_INDEX] + block_labels[1:]
        out["input_ids"].append(ids[start:end])
        out["labels"].append(block_labels)
        out["position_ids"].append(block_positions)
    return out


class PackedCollator:
    """Stacks equal-length packed blocks; no attention_mask, so the model derives the mask from position_ids."""

    def __call__(self, features: list[dict]) -> dict:
        import torch  # heavy: imported by the process that batches, not by `import`

        return {key: torch.tensor([f[key] for f in features]) for key in ("input_ids", "labels", "position_ids")}
