"""SFT example encoding: exact label masks, train_on_prompt, mask_history, truncation, efficient EOS, preview."""

from __future__ import annotations

import pytest

from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.preview import render_label_mask
from tuneforge.data.sft import IGNORE_INDEX, encode_sft_example, infer_seqlen
from tuneforge.data.template import get_template
from tuneforge.errors import UserError

CONV = Conversation(
    [
        Message("user", "Hi there, please tell me a story about a fox."),
        Message("assistant", "Once upon a time a quick brown fox jumped over the lazy dog."),
        Message("user", "How are you?"),
        Message("assistant", "Fine, thanks."),
    ],
    system="Be brief.",
)


@pytest.fixture
def chatml(tiny_tokenizer):
    return get_template("chatml", tiny_tokenizer)


def trained_text(example: dict, tokenizer) -> list[str]:
    """Decoded runs of trained tokens; asserts every trained label equals its input id."""
    spans, current = [], []
    for i, label in zip(example["input_ids"], example["labels"], strict=True):
        if label != IGNORE_INDEX:
            assert label == i
            current.append(i)
        elif current:
            spans.append(current)
            current = []
    if current:
        spans.append(current)
    return [tokenizer.decode(s, skip_special_tokens=False) for s in spans]


@pytest.mark.parametrize(
    "args, expected",
    [
        ((3000, 2000, 1000), (600, 400)),
        ((2000, 3000, 1000), (400, 600)),
        ((1000, 100, 1000), (900, 100)),
        ((100, 1000, 1000), (100, 900)),
        ((100, 500, 1000), (100, 500)),
        ((500, 100, 1000), (500, 100)),
        ((10, 10, 1000), (10, 10)),
    ],
)
def test_infer_seqlen(args, expected):
    assert infer_seqlen(*args) == expected


def test_labels_exact(chatml, tiny_tokenizer):
    pairs = chatml.encode_multiturn(tiny_tokenizer, CONV)
    example = encode_sft_example(CONV, chatml, tiny_tokenizer, cutoff_len=4096)
    want_ids, want_labels = [], []
    for prompt, response in pairs:
        want_ids += prompt + response
        want_labels += [IGNORE_INDEX] * len(prompt) + response
    assert example["input_ids"] == want_ids
    assert example["labels"] == want_labels
    assert trained_text(example, tiny_tokenizer) == [
        "Once upon a time a quick brown fox jumped over the lazy dog.<|im_end|>\n",
        "Fine, thanks.<|im_end|>\n",
    ]
    assert tiny_tokenizer.decode(pairs[0][0]).startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user")


def test_train_on_prompt(chatml, tiny_tokenizer):
    example = encode_sft_example(CONV, chatml, tiny_tokenizer, cutoff_len=4096, train_on_prompt=True)
    assert example["labels"] == example["input_ids"]


def test_mask_history_trains_the_last_response_only(chatml, tiny_tokenizer):
    full = encode_sft_example(CONV, chatml, tiny_tokenizer, cutoff_len=4096)
    masked = encode_sft_example(CONV, chatml, tiny_tokenizer, cutoff_len=4096, mask_history=True)
    assert masked["input_ids"] == full["input_ids"]
    assert trained_text(masked, tiny_tokenizer) == ["Fine, thanks.<|im_end|>\n"]


@pytest.mark.parametrize("mask_history", [False, True])
def test_cutoff_keeps_response_tokens(chatml, tiny_tokenizer, mask_history):
    full = len(encode_sft_example(CONV, chatml, tiny_tokenizer, cutoff_len=4096)["input_ids"])
    last_response = chatml.encode_multiturn(tiny_tokenizer, CONV)[-1][1]
    for cutoff in range(8, full + 3):
        ex = encode_sft_example(CONV, chatml, tiny_tokenizer, cutoff_len=cutoff, mask_history=mask_history)
        assert len(ex["input_ids"]) == len(ex["labels"]) == len(ex["attention_mask"]) <= cutoff
        trained = [i for i, label in zip(ex["input_ids"], ex["labels"], strict=True) if label != IGNORE_INDEX]
        assert trained, cutoff
        if mask_history:  # the last turn survives truncation first
            assert trained == last_response[: len(trained)]
    short = encode_sft_example(CONV, chatml, tiny_tokenizer, cutoff_len=full - 1)
    assert len(short["input_ids"]) == full - 1


def test_efficient_eos(tiny_tokenizer):
    template = get_template("baichuan2", tiny_tokenizer)
    eos = tiny_tokenizer.eos_token_id
    pairs = template.encode_multiturn(tiny_tokenizer, CONV)
    ex = encode_sft_example(CONV, template, tiny_tokenizer, cutoff_len=4096)
    (p1, r1), (p2, r2) = pairs
    assert eos not in r1 + r2  # the EOS is not part of the text between turns
    assert ex["input_ids"] == p1 + r1 + p2 + r2 + [eos]
    assert ex["labels"] == [IGNORE_INDEX] * len(p1) + r1 + [eos] + [IGNORE_INDEX] * (len(p2) - 1) + r2 + [eos]

    masked = encode_sft_example(CONV, template, tiny_tokenizer, cutoff_len=4096, mask_history=True)
    n1 = len(p1) + len(r1)
    assert masked["labels"] == [IGNORE_INDEX] * (n1 + len(p2)) + r2 + [eos]
    for cutoff in (10, 20, 40):
        assert len(encode_sft_example(CONV, template, tiny_tokenizer, cutoff_len=cutoff)["input_ids"]) <= cutoff

    with pytest.raises(UserError, match="train_on_prompt"):
        encode_sft_example(CONV, template, tiny_tokenizer, cutoff_len=4096, train_on_prompt=True)

    preview = render_label_mask(ex["input_ids"], ex["labels"], tiny_tokenizer, color=False)
    assert "dog.<|im_end|>" not in preview  # no real EOS between turns ...
    assert "dog.⟧⟪<|im_end|>⟫<reserved_106>" in preview  # ... but one is learnt there
    assert preview.endswith("1 of them learnt in place of another input token, shown as ⟪label⟫)")


def test_no_response_is_a_user_error(chatml, tiny_tokenizer):
    with pytest.raises(UserError, match="no response"):
        encode_sft_example(Conversation([Message("user", "hi")], source="d.json:9"), chatml, tiny_tokenizer, 64)


def test_default_system_override(tiny_tokenizer):
    qwen = get_template("qwen", tiny_tokenizer)
    conv = Conversation(CONV.messages)
    ex = encode_sft_example(conv, qwen, tiny_tokenizer, cutoff_len=4096, default_system="Custom.")
    assert tiny_tokenizer.decode(ex["input_ids"]).startswith("<|im_start|>system\nCustom.<|im_end|>\n")
