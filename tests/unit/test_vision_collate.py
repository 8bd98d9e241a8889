"""Rows of the picture demo, encoded with their image tokens and batched with their pixel values, train the tiny
Qwen2-VL: the pictures reach the vision tower (it gets gradients) and the loss on the batch falls."""

from __future__ import annotations

from pathlib import Path

import torch

from tuneforge.config.data_args import DataArguments
from tuneforge.config.multimodal_args import MultimodalArguments
from tuneforge.data.collate import SftCollator
from tuneforge.data.formats import load_conversations
from tuneforge.data.registry import get_dataset_attrs
from tuneforge.data.sft import encode_sft_example
from tuneforge.data.template import get_template
from tuneforge.data.vision_collate import VisionCollator
from tuneforge.data.vision_conversation import IMAGES_COLUMN, with_image_tokens
from tuneforge.model.vlm_processor import load_processor

DATA = Path(__file__).resolve().parents[2] / "data"


def test_batch_with_pixels_trains_the_tiny_vlm(tiny_vlm_dir):
    from transformers import AutoModelForImageTextToText

    folder = tiny_vlm_dir("qwen2_vl")
    processor = load_processor(folder)
    template = get_template("qwen2_vl", processor.tokenizer)
    [attr] = get_dataset_attrs("shapes_demo", DATA)
    rows = []
    for conv in load_conversations(attr, DATA, DataArguments(dataset_dir=str(DATA)))[:8]:
        expanded, _ = with_image_tokens(conv, template, processor, MultimodalArguments())
        example = encode_sft_example(expanded, template, processor.tokenizer, cutoff_len=256)
        rows.append({**example, IMAGES_COLUMN: conv.images})
    text_collator = SftCollator(processor.tokenizer.pad_token_id)
    collate = VisionCollator(text_collator, processor, MultimodalArguments(), "qwen2_vl")
    batch = collate(rows)
    assert batch["image_grid_thw"].shape == (8, 3) and batch["pixel_values"].shape[0] == 8 * 16  # 4x4 patches each
    assert all(isinstance(ref, str) for row in rows for ref in row[IMAGES_COLUMN])  # rows keep references, not pixels

    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for step in range(12):
        loss = model(**batch).loss
        loss.backward()
        if step == 0:
            vision = [p.grad for name, p in model.named_parameters() if "visual" in name and p.grad is not None]
            assert vision and any(g.abs().sum() > 0 for g in vision)  # the pictures are used
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
