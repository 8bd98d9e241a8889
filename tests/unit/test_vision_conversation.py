"""A row of our picture demo, encoded for SFT by the qwen2_vl template with its image tokens in place, is what
Qwen2-VL's own chat template + processor make of the same turns and picture, id for id; the image tokens are never
trained."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneforge.config.data_args import DataArguments
from tuneforge.config.multimodal_args import MultimodalArguments
from tuneforge.data.formats import load_conversations
from tuneforge.data.registry import get_dataset_attrs
from tuneforge.data.sft import IGNORE_INDEX, encode_sft_example
from tuneforge.data.template import get_template
from tuneforge.data.vision_conversation import with_image_tokens
from tuneforge.errors import UserError
from tuneforge.model.vlm_processor import load_processor

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def shapes_row():
    [attr] = get_dataset_attrs("shapes_demo", DATA)
    return load_conversations(attr, DATA, DataArguments(dataset_dir=str(DATA)))[0]


@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen2_5_vl"])
def test_sft_ids_equal_the_official_template_and_processor(tiny_vlm_dir, shapes_row, arch):
    processor = load_processor(tiny_vlm_dir(arch))
    tokenizer = processor.tokenizer
    template = get_template("qwen2_vl", tokenizer)
    conv, images = with_image_tokens(shapes_row, template, processor, MultimodalArguments())
    example = encode_sft_example(conv, template, tokenizer, cutoff_len=512)

    question, answer = shapes_row.messages[0].content, shapes_row.messages[1].content
    assert question.startswith("<image>")
    official = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question.removeprefix("<image>")}]},
        {"role": "assistant", "content": [{"type": "text", "text": answer}]},
    ]
    text = processor.apply_chat_template(official, tokenize=False)
    theirs = processor(text=[text], images=images, return_tensors="np")["input_ids"][0].tolist()
    assert example["input_ids"] == theirs

    pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    image_positions = [i for i, t in enumerate(example["input_ids"]) if t == pad]
    assert len(image_positions) == 4  # a 64 x 64 picture: 4 tokens
    assert all(example["labels"][i] == IGNORE_INDEX for i in image_positions)
    trained = tokenizer.decode([t for t in example["labels"] if t != IGNORE_INDEX])
    assert trained == answer + "<|im_end|>\n"


def test_text_template_with_images_is_one_line(tiny_vlm_dir, shapes_row):
    processor = load_processor(tiny_vlm_dir("qwen2_vl"))
    with pytest.raises(UserError, match="template 'qwen' is a text template, and this row has images"):
        with_image_tokens(shapes_row, get_template("qwen", processor.tokenizer), processor, MultimodalArguments())
