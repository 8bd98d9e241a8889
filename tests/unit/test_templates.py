"""Prompt templates: exact text per template, exact label masks, tokenizer chat_template, Jinja export, tools."""

from __future__ import annotations

import copy
import json

import pytest

from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.preview import render_label_mask
from tuneforge.data.sft import IGNORE_INDEX, encode_sft_example
from tuneforge.data.template import TEMPLATE_NAMES, get_template
from tuneforge.errors import UserError

CONV = Conversation(
    [
        Message("user", "Hi there"),
        Message("assistant", "Hello!"),
        Message("user", "How are you?"),
        Message("assistant", "Fine, thanks."),
    ],
    system="Be brief.",
)
A1, A2 = "Hello!", "Fine, thanks."

# name -> (bos, eos, full text, trained spans). Texts are written from each family's published format.
EXPECTED = {
    "default": (
        None,
        None,
        "System: Be brief.<|im_end|>\nHuman: Hi there<|im_end|>\nAssistant:Hello!<|im_end|>\n"
        "Human: How are you?<|im_end|>\nAssistant:Fine, thanks.<|im_end|>\n",
        ["Hello!<|im_end|>\n", "Fine, thanks.<|im_end|>\n"],
    ),
    "empty": (None, None, "Be brief.Hi thereHello!How are you?Fine, thanks.", [A1, A2]),
    "alpaca": (
        None,
        None,
        "Be brief.### Instruction:\nHi there\n\n### Response:\nHello!<|im_end|>\n\n"
        "### Instruction:\nHow are you?\n\n### Response:\nFine, thanks.<|im_end|>\n\n",
        ["Hello!<|im_end|>\n\n", "Fine, thanks.<|im_end|>\n\n"],
    ),
    "chatml": (
        None,
        None,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"
        "Hello!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\nFine, thanks.<|im_end|>\n",
        ["Hello!<|im_end|>\n", "Fine, thanks.<|im_end|>\n"],
    ),
    "llama3": (
        "<|begin_of_text|>",
        "<|eot_id|>",
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nFine, thanks.<|eot_id|>",
        ["Hello!<|eot_id|>", "Fine, thanks.<|eot_id|>"],
    ),
    "llama2": (
        "<s>",
        "</s>",
        "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST]Hello!</s>"
        "<s>[INST] How are you? [/INST]Fine, thanks.</s>",
        ["Hello!</s>", "Fine, thanks.</s>"],
    ),
    "mistral": (
        "<s>",
        "</s>",
        "<s>[INST] Be brief.\n\nHi there[/INST] Hello!</s>[INST] How are you?[/INST] Fine, thanks.</s>",
        [" Hello!</s>", " Fine, thanks.</s>"],
    ),
    "gemma": (
        "<bos>",
        "<end_of_turn>",
        "<bos><start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
        "<start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\nFine, thanks.<end_of_turn>\n",
        ["Hello!<end_of_turn>\n", "Fine, thanks.<end_of_turn>\n"],
    ),
    "vicuna": (
        None,
        "</s>",
        "Be brief.USER: Hi there ASSISTANT:Hello!</s>USER: How are you? ASSISTANT:Fine, thanks.</s>",
        ["Hello!</s>", "Fine, thanks.</s>"],
    ),
    "deepseek": (
        "<s>",
        "</s>",
        "<s>Be brief.\n\nUser: Hi there\n\nAssistant:Hello!</s>User: How are you?\n\nAssistant:Fine, thanks.</s>",
        ["Hello!</s>", "Fine, thanks.</s>"],
    ),
    "phi": (
        None,
        None,
        "<|system|>\nBe brief.<|end|>\n<|user|>\nHi there<|end|>\n<|assistant|>\nHello!<|end|>\n"
        "<|user|>\nHow are you?<|end|>\n<|assistant|>\nFine, thanks.<|end|>\n",
        ["Hello!<|end|>\n", "Fine, thanks.<|end|>\n"],
    ),
}
EXPECTED["qwen"] = EXPECTED["yi"] = EXPECTED["tokenizer"] = EXPECTED["qwen3_nothink"] = EXPECTED["chatml"]


def with_tokens(tokenizer, bos: str | None = None, eos: str | None = None):
    """A copy of the tiny tokenizer with another BOS / EOS (added as a token when the vocabulary lacks it)."""
    tok = copy.deepcopy(tokenizer)
    special = {k: v for k, v in (("bos_token", bos), ("eos_token", eos)) if v}
    if special:
        tok.add_special_tokens(special)
    return tok


def runs(example: dict, tokenizer) -> list[tuple[bool, str]]:
    """(trained, text) for each run of equally-masked tokens; checks trained labels equal their input ids."""
    out: list[tuple[bool, list[int]]] = []
    for i, label in zip(example["input_ids"], example["labels"], strict=True):
        trained = label != IGNORE_INDEX
        assert not trained or label == i
        if out and out[-1][0] == trained:
            out[-1][1].append(i)
        else:
            out.append((trained, [i]))
    return [(t, tokenizer.decode(ids, skip_special_tokens=False)) for t, ids in out]


def to_hf(conv: Conversation) -> list[dict]:
    head = [{"role": "system", "content": conv.system}] if conv.system else []
    return head + [{"role": m.role, "content": m.content} for m in conv.messages]


def test_every_template_is_covered():
    # these with a real tokenizer here; every LF template element for element in test_lf_templates.py
    assert set(EXPECTED) | {"baichuan2"} <= set(TEMPLATE_NAMES)


def test_baichuan2_render(tiny_tokenizer):
    text = get_template("baichuan2", tiny_tokenizer).render(tiny_tokenizer, CONV)
    assert (
        text
        == "Be brief.<reserved_106>Hi there<reserved_107>Hello!<reserved_106>How are you?<reserved_107>Fine, thanks."
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_render_and_label_mask_exact(name, tiny_tokenizer):
    bos, eos, text, spans = EXPECTED[name]
    tok = with_tokens(tiny_tokenizer, bos, eos)
    template = get_template(name, tok)
    assert template.render(tok, CONV) == text

    example = encode_sft_example(CONV, template, tok, cutoff_len=4096)
    pieces = runs(example, tok)
    assert "".join(t for _, t in pieces) == text
    assert [t for trained, t in pieces if trained] == spans
    assert example["attention_mask"] == [1] * len(example["input_ids"])


@pytest.mark.parametrize("name", ["chatml", "llama3", "llama2", "gemma", "default"])
def test_each_response_ends_with_its_end_token(name, tiny_tokenizer):
    bos, eos, _, _ = EXPECTED[name]
    tok = with_tokens(tiny_tokenizer, bos, eos)
    template = get_template(name, tok)
    end = tok.convert_tokens_to_ids(eos or "<|im_end|>")
    for _, response in template.encode_multiturn(tok, CONV):
        assert end in response[-2:]


def test_qwen_default_system_and_override(tiny_tokenizer):
    template = get_template("qwen", tiny_tokenizer)
    conv = Conversation([Message("user", "Hi"), Message("assistant", "Yo")])
    assert template.render(tiny_tokenizer, conv).startswith(
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
    )
    assert template.render(tiny_tokenizer, conv, default_system="").startswith("<|im_start|>user\nHi")
    assert template.render(tiny_tokenizer, conv, default_system="Sys").startswith("<|im_start|>system\nSys<|im_end|>")


def test_qwen3_nothink_has_no_default_system(tiny_tokenizer):
    """LLaMA-Factory's qwen3_nothink: Qwen's turns and tool format, no system prompt unless the data has one."""
    template = get_template("qwen3_nothink", tiny_tokenizer)
    conv = Conversation([Message("user", "Hi"), Message("assistant", "Yo")])
    assert template.render(tiny_tokenizer, conv) == (
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n"
    )
    assert template.tool_format == get_template("qwen", tiny_tokenizer).tool_format == "qwen"


def test_encode_prompt_ends_at_the_reply(tiny_tokenizer):
    template = get_template("chatml", tiny_tokenizer)
    conv = Conversation(CONV.messages[:3], system="Be brief.")
    ids = template.encode_prompt(tiny_tokenizer, conv)
    full = [i for p, r in template.encode_multiturn(tiny_tokenizer, CONV) for i in p + r]
    assert full[: len(ids)] == ids
    assert tiny_tokenizer.decode(ids).endswith("How are you?<|im_end|>\n<|im_start|>assistant\n")
    with pytest.raises(UserError, match="must end with a user"):
        template.encode_prompt(tiny_tokenizer, CONV)


def test_tokenizer_template_equals_chatml(tiny_tokenizer):
    ours = get_template("tokenizer", tiny_tokenizer)
    chatml = get_template("chatml", tiny_tokenizer)
    assert ours.encode_multiturn(tiny_tokenizer, CONV) == chatml.encode_multiturn(tiny_tokenizer, CONV)
    # without a system prompt the tiny chat_template adds its own default system
    conv = Conversation(CONV.messages)
    assert ours.encode_multiturn(tiny_tokenizer, conv) == chatml.encode_multiturn(
        tiny_tokenizer, conv, default_system="You are a helpful assistant."
    )
    assert ours.encode_prompt(tiny_tokenizer, Conversation(CONV.messages[:3])) == chatml.encode_prompt(
        tiny_tokenizer, Conversation(CONV.messages[:3]), default_system="You are a helpful assistant."
    )
    # segment-wise ids equal what apply_chat_template tokenizes in one go
    whole = tiny_tokenizer.apply_chat_template(to_hf(CONV), tokenize=True, return_dict=False)
    assert [i for p, r in ours.encode_multiturn(tiny_tokenizer, CONV) for i in p + r] == whole
    assert ours.stop_token_ids(tiny_tokenizer) == [tiny_tokenizer.eos_token_id]
    assert ours.to_jinja() == tiny_tokenizer.chat_template


def test_get_template_default_choice(tiny_tokenizer):
    assert get_template(None, tiny_tokenizer).name == "tokenizer"
    bare = copy.deepcopy(tiny_tokenizer)
    bare.chat_template = None
    assert get_template(None, bare).name == "default"
    with pytest.raises(UserError, match="has none"):
        get_template("tokenizer", bare)


def test_unstable_chat_template_is_refused(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    # the last message gets an end marker that moves once another message follows
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}{% if loop.last %}<|im_end|>{% endif %}{% endfor %}"
    with pytest.raises(UserError, match="not prefix-stable"):
        get_template("tokenizer", tok).encode_multiturn(tok, CONV)


def test_unknown_template_suggests_closest(tiny_tokenizer):
    with pytest.raises(UserError) as err:
        get_template("qwen2", tiny_tokenizer)
    text = str(err.value)
    assert "unknown template 'qwen2'" in text and "did you mean 'qwen'" in text
    assert all(name in text for name in TEMPLATE_NAMES)


@pytest.mark.parametrize(
    "name", ["qwen", "qwen3_nothink", "chatml", "llama3", "default", "llama2", "mistral", "gemma", "alpaca"]
)
def test_to_jinja_gives_the_same_ids(name, tiny_tokenizer):
    bos, eos, _, _ = EXPECTED[name]
    tok = with_tokens(tiny_tokenizer, bos, eos)
    template = get_template(name, tok)
    tok.chat_template = template.to_jinja()
    convs = [
        CONV,
        Conversation(CONV.messages),  # no system: the template's default system (qwen, alpaca)
        Conversation([Message("user", "你好 \n"), Message("assistant", "世界\n\n"), Message("user", "again")], "S\n"),
        Conversation([Message("user", "only a prompt")], system="Be brief."),
    ]
    for conv in convs:
        got = tok.apply_chat_template(to_hf(conv), tokenize=True, return_dict=False, add_generation_prompt=True)
        if conv.messages[-1].role == "user":
            assert got == template.encode_prompt(tok, conv)
        else:
            assert got == [i for p, r in template.encode_multiturn(tok, conv) for i in p + r]


def test_stop_token_ids_and_fix_tokenizer(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    im_end, im_start = tok.convert_tokens_to_ids(["<|im_end|>", "<|im_start|>"])
    chatml = get_template("chatml", tok)
    assert chatml.stop_token_ids(tok) == [im_end, im_start]
    assert chatml.fix_tokenizer(tok) == 0  # both stop words exist already
    assert tok.eos_token == "<|im_end|>"

    llama3 = get_template("llama3", tok)
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    assert llama3.stop_token_ids(tok) == [im_end, eot]  # <|eom_id|> is not a token yet
    size = len(tok)
    assert llama3.fix_tokenizer(tok) == 1  # <|eom_id|> added: the model must resize its embeddings
    assert len(tok) == size + 1
    assert tok.eos_token == "<|eot_id|>"
    assert llama3.stop_token_ids(tok) == [eot, tok.convert_tokens_to_ids("<|eom_id|>")]
    assert llama3.fix_tokenizer(tok) == 0  # idempotent

    no_pad = copy.deepcopy(tiny_tokenizer)
    no_pad.pad_token = None
    assert get_template("default", no_pad).fix_tokenizer(no_pad) == 0
    assert no_pad.pad_token == "<|im_end|>"


TOOLS = json.dumps(
    [
        {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name"}},
                "required": ["city"],
            },
        }
    ]
)
TOOL_CONV = Conversation(
    [
        Message("user", "Weather in Paris?"),
        Message("function", json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})),
        Message("observation", '{"temp": 20}'),
        Message("assistant", "20 degrees."),
    ],
    tools=TOOLS,
)


def test_default_tool_format(tiny_tokenizer):
    text = get_template("default", tiny_tokenizer).render(tiny_tokenizer, TOOL_CONV)
    assert text == (
        "System: You have access to the following tools:\n"
        "> Tool Name: get_weather\nTool Description: Weather of a city\nTool Args:\n"
        "  - city (string, required): City name\n\n"
        "Use the following format if using a tool:\n```\n"
        "Action: tool name (one of [get_weather])\n"
        "Action Input: the input to the tool, in a JSON format representing the kwargs "
        '(e.g. ```{"input": "hello world", "num_beams": 5}```)\n```\n<|im_end|>\n'
        "Human: Weather in Paris?<|im_end|>\nAssistant:"
        'Action: get_weather\nAction Input: {"city": "Paris"}<|im_end|>\n'
        'Human: {"temp": 20}<|im_end|>\nAssistant:20 degrees.<|im_end|>\n'
    )
    default = get_template("default", tiny_tokenizer)
    assert default.extract_tool('Action: get_weather\nAction Input: {"city": "Paris"}') == [
        ("get_weather", '{"city": "Paris"}')
    ]
    assert default.extract_tool("no call here") == "no call here"


def test_qwen_tool_format(tiny_tokenizer):
    text = get_template("qwen", tiny_tokenizer).render(tiny_tokenizer, TOOL_CONV)
    tool = {"type": "function", "function": json.loads(TOOLS)[0]}
    assert text.startswith(
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\n"
        "You may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
        + json.dumps(tool)
        + "\n</tools>\n\n"
    )
    assert text.endswith(
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n'
        '<|im_start|>user\n<tool_response>\n{"temp": 20}\n</tool_response><|im_end|>\n'
        "<|im_start|>assistant\n20 degrees.<|im_end|>\n"
    )
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    assert get_template("qwen", tiny_tokenizer).extract_tool(call) == [("get_weather", '{"city": "Paris"}')]


def test_bad_conversations_are_user_errors(tiny_tokenizer):
    template = get_template("chatml", tiny_tokenizer)
    with pytest.raises(UserError, match="role 'assistant'"):
        template.encode_multiturn(tiny_tokenizer, Conversation([Message("assistant", "x")], source="d.json:3"))
    bad_tools = Conversation(CONV.messages, tools="[not json", source="d.json:4")
    with pytest.raises(UserError, match="tools is not valid JSON") as err:
        template.encode_multiturn(tiny_tokenizer, bad_tools)
    assert str(err.value).startswith("d.json:4")
    with pytest.raises(UserError, match="tools must be a JSON list"):
        template.encode_multiturn(tiny_tokenizer, Conversation(CONV.messages, tools='["get_weather"]'))
    no_tools = Conversation(CONV.messages, system=CONV.system, tools="[]")
    assert template.render(tiny_tokenizer, no_tools) == template.render(tiny_tokenizer, CONV)
    bad_call = Conversation([Message("user", "x"), Message("function", '{"name": "f"}')], source="d.json:5")
    with pytest.raises(UserError, match="'name' and 'arguments'"):
        template.encode_multiturn(tiny_tokenizer, bad_call)


def test_preview_markers(tiny_tokenizer):
    template = get_template("chatml", tiny_tokenizer)
    example = encode_sft_example(CONV, template, tiny_tokenizer, cutoff_len=4096)
    plain = render_label_mask(example["input_ids"], example["labels"], tiny_tokenizer, color=False)
    text, summary = plain.rsplit("\n", 1)
    assert text == EXPECTED["chatml"][2].replace("Hello!<|im_end|>\n", "⟦Hello!<|im_end|>\n⟧").replace(
        "Fine, thanks.<|im_end|>\n", "⟦Fine, thanks.<|im_end|>\n⟧"
    )
    n_trained = sum(label != IGNORE_INDEX for label in example["labels"])
    assert summary == f"tokens: {len(example['input_ids'])}, trained: {n_trained}"

    colored = render_label_mask(example["input_ids"], example["labels"], tiny_tokenizer, color=True)
    assert "\x1b[32mHello!<|im_end|>\n\x1b[0m" in colored
    assert colored.startswith("\x1b[2m<|im_start|>system\n")
    assert "⟦" not in colored


def test_tokenizer_template_llama3_style(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = (
        "{{ bos_token }}{% for m in messages %}"
        "{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] | trim + '<|eot_id|>' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
    )
    ours = get_template("tokenizer", tok)
    conv = Conversation(CONV.messages[:3], system="Be brief.")
    assert ours.encode_prompt(tok, conv) == get_template("llama3", tok).encode_prompt(tok, conv)  # no BOS here
    # the reply closes with <|eot_id|>, not the tokenizer's EOS: both stop generation
    assert ours.stop_token_ids(tok) == [tok.eos_token_id, tok.convert_tokens_to_ids("<|eot_id|>")]
