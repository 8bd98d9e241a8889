"""The data keys that shape a template (enable_thinking, preserve_thinking, tool_format) take effect from a config,
and a few LF templates end to end with a real tokenizer: exact text and exact label masks."""

from __future__ import annotations

import copy
import json
import typing

import pytest

from tuneforge.config import load_config
from tuneforge.config.data_args import ToolFormatName
from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.pairwise import encode_pairwise_example
from tuneforge.data.sft import IGNORE_INDEX, encode_sft_example
from tuneforge.data.template import get_template, template_for
from tuneforge.data.tool_formats import TOOL_FORMAT_NAMES
from tuneforge.errors import UserError

THINK = "<think>\nAdd them.\n</think>\n\n4"
CONV = Conversation(
    [Message("user", "2+2?"), Message("assistant", THINK), Message("user", "Capital?"), Message("assistant", "Paris.")]
)


def config_template(tokenizer, **data):
    cfg = load_config(None, {"model_name_or_path": "m", **data})
    return template_for(cfg.data, tokenizer)


def trained_and_text(example: dict, tokenizer) -> tuple[str, list[str]]:
    """(the whole text, the trained spans)."""
    spans, run = [], []
    for i, label in zip(example["input_ids"], example["labels"], strict=True):
        if label != IGNORE_INDEX:
            run.append(i)
        elif run:
            spans.append(run)
            run = []
    spans += [run] if run else []
    text = tokenizer.decode(example["input_ids"], skip_special_tokens=False)
    return text, [tokenizer.decode(s, skip_special_tokens=False) for s in spans]


def sft(template, tokenizer, conv=CONV, **kw):
    return trained_and_text(encode_sft_example(conv, template, tokenizer, cutoff_len=4096, **kw), tokenizer)


U1 = "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
U2 = "<|im_start|>user\nCapital?<|im_end|>\n<|im_start|>assistant\n"
EMPTY = "<think>\n\n</think>\n\n"


def test_enable_thinking_true_trains_thinking_and_the_empty_thought(tiny_tokenizer):
    template = config_template(tiny_tokenizer, template="qwen3")
    text, trained = sft(template, tiny_tokenizer)
    assert text == U1 + THINK + "<|im_end|>\n" + U2 + EMPTY + "Paris.<|im_end|>\n"
    assert trained == [THINK + "<|im_end|>\n", EMPTY + "Paris.<|im_end|>\n"]


def test_enable_thinking_false_drops_thinking_and_prompts_the_empty_thought(tiny_tokenizer):
    template = config_template(tiny_tokenizer, template="qwen3", enable_thinking=False)
    text, trained = sft(template, tiny_tokenizer)
    assert text == U1 + EMPTY + "4<|im_end|>\n" + U2 + EMPTY + "Paris.<|im_end|>\n"
    assert trained == ["4<|im_end|>\n", "Paris.<|im_end|>\n"]
    # generation ends with the empty thought, as LF's chat engine prompts
    prompt = template.encode_prompt(tiny_tokenizer, Conversation(CONV.messages[:3]))
    assert tiny_tokenizer.decode(prompt).endswith(U2 + EMPTY)


def test_enable_thinking_null_mixed_data(tiny_tokenizer):
    template = config_template(tiny_tokenizer, template="qwen3", enable_thinking=None)
    text, trained = sft(template, tiny_tokenizer)
    assert text == U1 + THINK + "<|im_end|>\n" + U2 + EMPTY + "Paris.<|im_end|>\n"
    assert trained == [THINK + "<|im_end|>\n", "Paris.<|im_end|>\n"]


def test_nothink_template_trains_the_text_as_it_is(tiny_tokenizer):
    template = config_template(tiny_tokenizer, template="qwen3_nothink", enable_thinking=False)
    text, trained = sft(template, tiny_tokenizer)
    assert text == U1 + THINK + "<|im_end|>\n" + U2 + "Paris.<|im_end|>\n"


def test_preserve_thinking_keeps_earlier_thoughts(tiny_tokenizer):
    conv = Conversation(
        [*CONV.messages[:3], Message("assistant", "<think>\nRecall.\n</think>\n\nParis.")],
        rejected=Message("assistant", "Rome."),
    )
    dropped = encode_pairwise_example(conv, config_template(tiny_tokenizer, template="qwen3"), tiny_tokenizer, 4096)
    kept = encode_pairwise_example(
        conv, config_template(tiny_tokenizer, template="qwen3", preserve_thinking=True), tiny_tokenizer, 4096
    )
    assert tiny_tokenizer.decode(dropped["prompt_ids"]) == U1 + "4<|im_end|>\n" + U2
    assert tiny_tokenizer.decode(kept["prompt_ids"]) == U1 + THINK + "<|im_end|>\n" + U2
    assert tiny_tokenizer.decode(kept["rejected_ids"]) == EMPTY + "Rome.<|im_end|>\n"
    # SFT with mask_history: only the last reply's thinking stays, unless preserve_thinking
    masked, _ = sft(config_template(tiny_tokenizer, template="qwen3"), tiny_tokenizer, mask_history=True)
    assert masked == U1 + "4<|im_end|>\n" + U2 + EMPTY + "Paris.<|im_end|>\n"
    both = config_template(tiny_tokenizer, template="qwen3", preserve_thinking=True)
    assert (
        sft(both, tiny_tokenizer, mask_history=True)[0]
        == U1 + THINK + "<|im_end|>\n" + U2 + EMPTY + "Paris.<|im_end|>\n"
    )


def test_reasoning_field_renders_like_thought_words_in_the_content(tiny_tokenizer):
    template = get_template("qwen3", tiny_tokenizer)
    split = Conversation([CONV.messages[0], Message("assistant", "\n4", reasoning="\nAdd them.\n")])
    inline = Conversation([CONV.messages[0], Message("assistant", THINK)])
    assert template.encode_multiturn(tiny_tokenizer, split) == template.encode_multiturn(tiny_tokenizer, inline)


TOOLS = json.dumps([{"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}])
TOOL_CONV = Conversation(
    [
        Message("user", "Weather?"),
        Message("function", json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})),
        Message("observation", "20"),
        Message("assistant", "20 degrees."),
    ],
    tools=TOOLS,
)


def test_tool_format_overrides_the_templates(tiny_tokenizer):
    own = config_template(tiny_tokenizer, template="qwen")
    other = config_template(tiny_tokenizer, template="qwen", tool_format="default")
    assert own.tool_format == "qwen" and other.tool_format == "default"
    text = other.render(tiny_tokenizer, TOOL_CONV)
    assert "You have access to the following tools:\n> Tool Name: get_weather" in text
    # LF writes the call in the plain reply slot ({{content}} + EOS), here <|im_end|> without the newline
    assert 'Action: get_weather\nAction Input: {"city": "Paris"}<|im_end|><|im_start|>user\n<tool_response>' in text
    assert other.extract_tool('Action: f\nAction Input: {"a": 1}') == [("f", '{"a": 1}')]
    assert "<tool_call>" in own.render(tiny_tokenizer, TOOL_CONV)


def test_unknown_tool_format_is_one_line():
    with pytest.raises(UserError) as caught:
        load_config(None, {"model_name_or_path": "m", "tool_format": "hermes"})
    assert "tool_format" in str(caught.value) and "qwen" in str(caught.value) and "\n" not in str(caught.value)


def test_tool_format_names_agree_with_tool_formats():
    assert list(typing.get_args(ToolFormatName)) == TOOL_FORMAT_NAMES


def with_specials(tokenizer, *tokens):
    tok = copy.deepcopy(tokenizer)
    tok.add_special_tokens({"additional_special_tokens": list(tokens)})
    return tok


def test_chatglm3_token_elements_are_one_id_each(tiny_tokenizer):
    tok = with_specials(tiny_tokenizer, "[gMASK]", "sop", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>")
    template = get_template("chatglm3", tok)
    conv = Conversation([Message("user", "Hi"), Message("assistant", "Yo")], system="S")
    ((prompt, response),) = template.encode_multiturn(tok, conv)
    ids = tok.convert_tokens_to_ids
    assert prompt[:3] == [ids("[gMASK]"), ids("sop"), ids("<|system|>")]
    assert prompt[-1] == ids("<|assistant|>")
    assert tok.decode(prompt + response, skip_special_tokens=False) == (
        "[gMASK]sop<|system|>\nS<|user|>\nHi<|assistant|>\nYo"
    )


def test_llama3_tools_end_to_end(tiny_tokenizer):
    tok = with_specials(tiny_tokenizer, "<|eot_id|>")
    template = get_template("llama3", tok)
    template.formatter.date = "26 Jul 2024"
    text = template.render(tok, TOOL_CONV)
    assert text.startswith(
        "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
        "Today Date: 26 Jul 2024\n\n"
    )
    assert text.endswith(
        '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"city": "Paris"}}'
        "<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n20<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n20 degrees.<|eot_id|>"
    )


def test_glm47_empty_thought_is_the_closing_word_only(tiny_tokenizer):
    template = get_template("glm4_7", tiny_tokenizer, enable_thinking=False)
    prompt = template.encode_prompt(tiny_tokenizer, Conversation([Message("user", "Hi")]))
    assert tiny_tokenizer.decode(prompt, skip_special_tokens=False).endswith("<|assistant|></think>")
