"""Stage processors: pairwise / KTO / prompt encodings match the SFT template; pt packing never crosses documents."""

from __future__ import annotations

import pytest
import torch

from tuneforge.data.conversation import ASSISTANT, USER, Conversation, Message
from tuneforge.data.pairwise import encode_kto_example, encode_pairwise_example
from tuneforge.data.pretrain import encode_document, pack_documents
from tuneforge.data.prompts import encode_prompt_example
from tuneforge.data.sft import IGNORE_INDEX, encode_sft_example
from tuneforge.data.template import get_template


@pytest.fixture
def qwen(tiny_tokenizer):
    template = get_template("qwen", tiny_tokenizer)
    template.fix_tokenizer(tiny_tokenizer)
    return template


def pair_conv() -> Conversation:
    msgs = [
        Message(USER, "Hi"),
        Message(ASSISTANT, "Hello!"),
        Message(USER, "Name a fruit."),
        Message(ASSISTANT, "Apple."),
    ]
    return Conversation(msgs, rejected=Message(ASSISTANT, "No."))


def test_pairwise_prompt_and_chosen_are_the_sft_encoding(qwen, tiny_tokenizer):
    conv = pair_conv()
    ex = encode_pairwise_example(conv, qwen, tiny_tokenizer, cutoff_len=1024)
    sft = encode_sft_example(conv, qwen, tiny_tokenizer, 1024)
    assert ex["prompt_ids"] + ex["chosen_ids"] == sft["input_ids"]  # what SFT and chat see, token for token
    assert [i for i, lab in zip(sft["input_ids"], sft["labels"], strict=True) if lab != IGNORE_INDEX][
        -len(ex["chosen_ids"]) :
    ] == ex["chosen_ids"]
    assert tiny_tokenizer.eos_token_id in ex["chosen_ids"] and tiny_tokenizer.eos_token_id in ex["rejected_ids"]
    assert tiny_tokenizer.decode(ex["rejected_ids"]).startswith("No.")
    prompt_only = Conversation(conv.messages[:-1])
    assert ex["prompt_ids"] == qwen.encode_prompt(tiny_tokenizer, prompt_only)


def test_pairwise_truncation_fits_cutoff(qwen, tiny_tokenizer):
    conv = pair_conv()
    conv.messages[-1].content = "Apple. " * 40
    ex = encode_pairwise_example(conv, qwen, tiny_tokenizer, cutoff_len=48)
    assert len(ex["prompt_ids"]) + max(len(ex["chosen_ids"]), len(ex["rejected_ids"])) <= 48
    assert ex["chosen_ids"] and ex["rejected_ids"]


def test_kto_and_prompt_encodings(qwen, tiny_tokenizer):
    conv = pair_conv()
    conv.rejected, conv.kto_tag = None, False
    ex = encode_kto_example(conv, qwen, tiny_tokenizer, cutoff_len=1024)
    assert ex["label"] is False
    assert ex["prompt_ids"] + ex["completion_ids"] == encode_sft_example(conv, qwen, tiny_tokenizer, 1024)["input_ids"]
    prompt = encode_prompt_example(conv, qwen, tiny_tokenizer, cutoff_len=1024)
    assert prompt["input_ids"] == ex["prompt_ids"]  # PPO generates from exactly the prompt DPO/KTO train on
    assert encode_prompt_example(conv, qwen, tiny_tokenizer, cutoff_len=5)["input_ids"] == ex["prompt_ids"][-5:]


def test_pack_documents_restarts_positions_and_masks_boundaries():
    docs = [[10, 11, 12], [20, 21], [30, 31, 32, 33, 34]]
    packed = pack_documents(docs, block_size=4)
    assert packed["input_ids"] == [[10, 11, 12, 20], [21, 30, 31, 32]]  # 10 tokens → 2 full blocks, rest dropped
    assert packed["position_ids"] == [[0, 1, 2, 0], [0, 0, 1, 2]]
    assert packed["labels"] == [[IGNORE_INDEX, 11, 12, IGNORE_INDEX], [IGNORE_INDEX, IGNORE_INDEX, 31, 32]]
    short = pack_documents([[1, 2]], block_size=8)  # less than one block: one shorter block
    assert short["input_ids"] == [[1, 2]]


def test_encode_document_ends_with_eos(tiny_tokenizer):
    ids = encode_document(Conversation([Message(USER, "plain text")]), tiny_tokenizer)["input_ids"]
    assert ids[-1] == tiny_tokenizer.eos_token_id
    assert tiny_tokenizer.decode(ids[:-1]) == "plain text"


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_block_does_not_attend_across_documents(tiny_model_dir, attn):
    from transformers import AutoModelForCausalLM

    from tuneforge.data.pretrain import PackedCollator

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=attn).eval()
    a, b = [5, 6, 7, 8, 9], [40, 41, 42]
    block = pack_documents([a, b], block_size=8)
    batch = PackedCollator()([{k: v[0] for k, v in block.items()}])
    assert "attention_mask" not in batch
    with torch.no_grad():
        # as in training: no KV cache (transformers reads packed position ids only without one)
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        alone_a = model(input_ids=torch.tensor([a])).logits[0]
        alone_b = model(input_ids=torch.tensor([b])).logits[0]
    torch.testing.assert_close(packed[:5], alone_a, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(packed[5:], alone_b, atol=1e-5, rtol=1e-4)  # b sees nothing of a
