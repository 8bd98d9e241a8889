"""`tuneforge preview`: the first samples exactly as training encodes them, trained tokens marked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneforge.data.formats import load_conversations
from tuneforge.data.media import refuse_vision
from tuneforge.data.preview import render_label_mask, thinking_line
from tuneforge.data.registry import get_dataset_attrs
from tuneforge.data.sft import encode_sft_example
from tuneforge.data.template import template_for
from tuneforge.errors import UserError
from tuneforge.model.loader import load_tokenizer

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig


def preview(cfg: RunConfig, count: int = 3, color: bool | None = None) -> str:
    if not cfg.data.dataset:
        raise UserError("dataset is required", fix="name one or more datasets from dataset_info.json")
    tokenizer = load_tokenizer(cfg.model)
    template = template_for(cfg.data, tokenizer)
    template.fix_tokenizer(tokenizer)
    blocks = []
    for attr in get_dataset_attrs(cfg.data.dataset, cfg.data.dataset_dir):
        for conv in load_conversations(attr, cfg.data.dataset_dir, cfg.data)[:count]:
            refuse_vision(conv, "preview")  # the image tokens come with vision training
            d = cfg.data
            example = encode_sft_example(
                conv, template, tokenizer, d.cutoff_len, d.train_on_prompt, d.mask_history, d.default_system
            )
            ids, labels = example["input_ids"], example["labels"]
            header = f"── {attr.name} · {conv.source} · template {template.name} ──"
            body = render_label_mask(ids, labels, tokenizer, color, thought_words=template.thought_words)
            thinking = thinking_line(ids, labels, tokenizer, template, conv)  # None: nothing about thinking here
            blocks.append(header + "\n" + body + (f"\n{thinking}" if thinking else ""))
    return "\n\n".join(blocks)
