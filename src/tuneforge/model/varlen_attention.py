"""Padding-free SFT batches for PyTorch's sdpa attention: each sample of a flattened batch attends to itself only.

A padded batch pays every projection and MLP FLOP of its pad tokens too: 27 % of the tokens of the benchmark's
length-grouped batches of 4, and their activations. flash-attention avoids it by taking the batch as one row of
samples whose position_ids restart at each sample (data/collate.py `flatten`). sdpa has no such variable-length
form: transformers gives it a square block mask over the whole row instead, which costs the attention of every
sample against every other. This attention implementation, registered with transformers as `sdpa_varlen`, runs
sdpa once per sample of such a row, causal, with no mask; anything else (a padded batch, generation with a cache)
goes to transformers' own sdpa as before. The results are those of the padded batch: the same keys and values
reach each query.

Only for models whose attention is causal and nothing more (no sliding window, no soft-capping, no bidirectional
image tokens) and whose decoder layers hand `position_ids` to the attention, as the families in VARLEN_MODEL_TYPES
do (tests/unit/test_varlen_attention.py checks each against its padded batch).
"""

from __future__ import annotations

NAME = "sdpa_varlen"
# Text decoders whose attention is plain causal sdpa and receives `position_ids` (tested one by one)
VARLEN_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "qwen2_moe", "qwen3_moe"})


def varlen_attention_fits(config) -> bool:
    """A text decoder of a tested family with full causal attention in every layer."""
    if config.get_text_config() is not config or config.model_type not in VARLEN_MODEL_TYPES:
        return False
    if any(kind != "full_attention" for kind in getattr(config, "layer_types", None) or ()):
        return False
    window_used = getattr(config, "use_sliding_window", True)  # Qwen2 / Qwen3 read the window only with this on
    return not (window_used and getattr(config, "sliding_window", None))


def use_varlen_attention(model) -> None:
    """Switch a loaded model (under any PEFT wrapper) to `sdpa_varlen`; its config.json is unchanged by it."""
    register()
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.set_attn_implementation(NAME)


def register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, varlen_sdpa_forward)
    AttentionMaskInterface.register(NAME, varlen_mask)


def varlen_mask(*, q_length, kv_length, q_offset=0, kv_offset=0, attention_mask=None, **kwargs):
    """No mask for a batch without padding and without a cache (the attention splits packed rows itself); sdpa's
    mask otherwise."""
    from transformers.masking_utils import sdpa_mask

    no_offset = isinstance(q_offset, int) and isinstance(kv_offset, int) and q_offset == kv_offset == 0
    if attention_mask is None and q_length == kv_length and no_offset:
        return None
    return sdpa_mask(
        q_length=q_length,
        kv_length=kv_length,
        q_offset=q_offset,
        kv_offset=kv_offset,
        attention_mask=attention_mask,
        **kwargs,
    )


def varlen_sdpa_forward(module, query, key, value, attention_mask, position_ids=None, **kwargs):
    """transformers' attention signature: query (B, heads, T, d); returns (B, T, heads, d) and no weights."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    spans = None
    if attention_mask is None and position_ids is not None and query.shape[2] == key.shape[2] > 1:
        spans = sample_spans(position_ids.expand(query.shape[0], -1))
    if spans is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    rows = []
    for row, row_spans in enumerate(spans):
        parts = [
            sdpa_attention_forward(
                module, *(t[row : row + 1, :, start:end] for t in (query, key, value)), None, **kwargs
            )[0]
            for start, end in row_spans
        ]
        rows.append(torch.cat(parts, dim=1) if len(parts) > 1 else parts[0])
    return torch.cat(rows, dim=0) if len(rows) > 1 else rows[0], None


def sample_spans(position_ids) -> list[list[tuple[int, int]]] | None:
    """[start, end) of each sample in each row: a sample starts where the positions do not go on by one. None when
    every row is one sample."""
    starts = position_ids[:, 1:] != position_ids[:, :-1] + 1
    if not bool(starts.any()):
        return None
    length = position_ids.shape[1]
    cuts: list[list[int]] = [[0] for _ in range(position_ids.shape[0])]
    for row, before in starts.nonzero().tolist():
        cuts[row].append(before + 1)
    return [list(zip(row, [*row[1:], length], strict=True)) for row in cuts]
