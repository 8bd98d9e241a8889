"""`template: tokenizer` with a chat_template that rewrites history (the official Qwen3 one): each reply found in
the full rendering, exact label masks per enable_thinking, the thinking settings passed to the Jinja,
{% generation %} marks, and one clear error when a reply cannot be found."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.pairwise import encode_pairwise_example
from tuneforge.data.sft import IGNORE_INDEX, encode_sft_example
from tuneforge.data.template import get_template
from tuneforge.errors import UserError

QWEN3_JINJA = Path(__file__).parent.parent / "fixtures" / "chat_templates" / "Qwen-Qwen3-8B.jinja"

# Thinking as a <think> block in the content (sharegpt) and as a separate field (OpenAI reasoning_content)
IN_CONTENT = Conversation(
    [
        Message("user", "What is 2+3?"),
        Message("assistant", "<think>\nAdd two and three.\n</think>\n\n2+3=5."),
        Message("user", "And 5+5?"),
        Message("assistant", "<think>\nFive plus five.\n</think>\n\n10."),
    ]
)
AS_FIELD = Conversation(
    [
        Message("user", "What is 2+3?"),
        Message("assistant", "2+3=5.", reasoning="Add two and three."),
        Message("user", "And 5+5?"),
        Message("assistant", "10.", reasoning="Five plus five."),
    ]
)
PLAIN = Conversation(
    [Message("user", "Name a colour."), Message("assistant", "Blue."), Message("user", "Another one?")]
    + [Message("assistant", "Red.")]
)
P1 = "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
P2 = "<|im_start|>user\nAnd 5+5?<|im_end|>\n<|im_start|>assistant\n"
Q2 = "<|im_start|>user\nAnother one?<|im_end|>\n<|im_start|>assistant\n"
EMPTY = "<think>\n\n</think>\n\n"


@pytest.fixture
def qwen3_tok(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = QWEN3_JINJA.read_text(encoding="utf-8")
    return tok


def segments(tok, template, conv) -> list[str]:
    return [tok.decode(ids) for pair in template.encode_multiturn(tok, conv) for ids in pair]


def trained_and_masked(tok, template, conv) -> tuple[list[str], list[str]]:
    """The decoded runs of trained and of masked tokens of the SFT example."""
    ex = encode_sft_example(conv, template, tok, cutoff_len=4096)
    runs: list[tuple[bool, list[int]]] = []
    for i, label in zip(ex["input_ids"], ex["labels"], strict=True):
        trained = label != IGNORE_INDEX
        assert not trained or label == i
        if runs and runs[-1][0] == trained:
            runs[-1][1].append(i)
        else:
            runs.append((trained, [i]))
    decoded = [(t, tok.decode(ids)) for t, ids in runs]
    return [s for t, s in decoded if t], [s for t, s in decoded if not t]


@pytest.mark.parametrize("conv", [IN_CONTENT, AS_FIELD], ids=["think-in-content", "reasoning_content"])
def test_qwen3_enable_thinking_true_trains_the_last_thinking(qwen3_tok, conv):
    """Qwen3's template drops the thinking of replies before the last user query: only the last keeps it."""
    template = get_template("tokenizer", qwen3_tok, enable_thinking=True)
    assert template.kind == "reasoning"
    trained, masked = trained_and_masked(qwen3_tok, template, conv)
    assert trained == ["2+3=5.<|im_end|>\n", "<think>\nFive plus five.\n</think>\n\n10.<|im_end|>\n"]
    assert masked == [P1, P2]


@pytest.mark.parametrize("conv", [IN_CONTENT, AS_FIELD], ids=["think-in-content", "reasoning_content"])
def test_qwen3_enable_thinking_false_masks_the_empty_think_block(qwen3_tok, conv):
    """No thinking trained; the last prompt ends with the empty think block the template's generation prompt
    writes with enable_thinking=False (masked)."""
    template = get_template("tokenizer", qwen3_tok, enable_thinking=False)
    trained, masked = trained_and_masked(qwen3_tok, template, conv)
    assert trained == ["2+3=5.<|im_end|>\n", "10.<|im_end|>\n"]
    assert masked == [P1, P2 + EMPTY]


def test_qwen3_mixed_data_follows_each_reply(qwen3_tok):
    """enable_thinking: null: a last reply with thinking trains it; one without gets the empty block masked."""
    template = get_template("tokenizer", qwen3_tok, enable_thinking=None)
    assert trained_and_masked(qwen3_tok, template, AS_FIELD)[0][-1] == (
        "<think>\nFive plus five.\n</think>\n\n10.<|im_end|>\n"
    )
    trained, masked = trained_and_masked(qwen3_tok, template, PLAIN)
    assert trained == ["Blue.<|im_end|>\n", "Red.<|im_end|>\n"]
    assert masked[-1] == Q2 + EMPTY
    # enable_thinking: true on the same plain data trains the empty block the template writes
    on = get_template("tokenizer", qwen3_tok, enable_thinking=True)
    assert trained_and_masked(qwen3_tok, on, PLAIN)[0] == ["Blue.<|im_end|>\n", EMPTY + "Red.<|im_end|>\n"]


@pytest.mark.parametrize("enable", [True, False])
def test_qwen3_segments_rebuild_the_official_rendering(qwen3_tok, enable):
    """The segments are the template's own text, cut at the replies; the prompt for generation is the
    official add_generation_prompt rendering (enable_thinking passed)."""
    template = get_template("tokenizer", qwen3_tok, enable_thinking=enable)
    full = qwen3_tok.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in IN_CONTENT.messages], tokenize=False
    )
    text = "".join(segments(qwen3_tok, template, IN_CONTENT))
    assert text == (full if enable else full.replace("<think>\nFive plus five.\n</think>\n\n", EMPTY))
    history = Conversation(IN_CONTENT.messages[:3])
    want = qwen3_tok.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in history.messages],
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=enable,
    )
    assert qwen3_tok.decode(template.encode_prompt(qwen3_tok, history)) == want
    assert want.endswith(P2 + ("" if enable else EMPTY))


def test_reasoning_field_without_template_support_goes_in_the_content(tiny_tokenizer):
    """The tiny ChatML template knows no reasoning_content: the thinking is written in the thought words."""
    template = get_template("tokenizer", tiny_tokenizer)
    conv = Conversation([Message("user", "Hi"), Message("assistant", "Hello!", reasoning="\nGreet back.\n")])
    assert segments(tiny_tokenizer, template, conv)[1] == "<think>\nGreet back.\n</think>\n\nHello!<|im_end|>\n"
    off = get_template("tokenizer", tiny_tokenizer, enable_thinking=False)
    assert segments(tiny_tokenizer, off, conv)[1] == "Hello!<|im_end|>\n"
    assert segments(tiny_tokenizer, off, IN_CONTENT)[1::2] == ["2+3=5.<|im_end|>\n", "10.<|im_end|>\n"]


def test_thinking_settings_reach_the_chat_template(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = (
        "{% for m in messages %}{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}[{{ enable_thinking }} {{ preserve_thinking }}]{% endif %}"
    )
    conv = Conversation([Message("user", "Hi")])
    for enable, preserve in ((True, False), (False, True)):
        template = get_template("tokenizer", tok, enable_thinking=enable, preserve_thinking=preserve)
        assert tok.decode(template.encode_prompt(tok, conv)) == f"Hi[{enable} {preserve}]"


def test_qwen3_agent_turns_are_found_where_the_template_rewrites_them(qwen3_tok):
    """A tool-calling reply with thinking, its tool result, an answer, then a new user query: Qwen3 drops the
    tool-calling reply's thinking once the later query exists, so that reply is found by its header."""
    call = json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})
    conv = Conversation(
        [
            Message("user", "Weather in Paris?"),
            Message("function", call, reasoning="Need the tool."),
            Message("observation", "Sunny"),
            Message("assistant", "It is sunny.", reasoning="Tool said sunny."),
            Message("user", "Thanks"),
            Message("assistant", "<think>\nPolite.\n</think>\n\nYou're welcome."),
        ],
        system="Be brief.",
        tools=json.dumps([{"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}]),
    )
    template = get_template("tokenizer", qwen3_tok, enable_thinking=True)
    trained, masked = trained_and_masked(qwen3_tok, template, conv)
    assert trained == [
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n',
        "It is sunny.<|im_end|>\n",
        "<think>\nPolite.\n</think>\n\nYou're welcome.<|im_end|>\n",
    ]
    assert masked[1:] == [
        "<|im_start|>user\n<tool_response>\nSunny\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>user\nThanks<|im_end|>\n<|im_start|>assistant\n",
    ]
    assert masked[0].startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")


@pytest.mark.parametrize("name", ["Qwen-Qwen3.5-4B.jinja", "Qwen-Qwen3.6-27B.jinja"])
def test_qwen3_5_generation_prompt_opens_the_think_block(tiny_tokenizer, name):
    """Qwen3.5 / 3.6 end the generation prompt with `<think>\\n` (masked); history replies have no think block, so
    they are found by the header the template writes before a history reply."""
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = (QWEN3_JINJA.parent / name).read_text(encoding="utf-8")
    on = get_template("tokenizer", tok, enable_thinking=True)
    trained, masked = trained_and_masked(tok, on, AS_FIELD)
    assert trained == ["2+3=5.<|im_end|>\n", "Five plus five.\n</think>\n\n10.<|im_end|>\n"]
    assert masked == [P1, P2 + "<think>\n"]
    off = get_template("tokenizer", tok, enable_thinking=False)
    trained, masked = trained_and_masked(tok, off, AS_FIELD)
    assert trained == ["2+3=5.<|im_end|>\n", "10.<|im_end|>\n"]
    assert masked == [P1, P2 + EMPTY]


def test_history_replies_under_their_own_header_and_replies_without_an_end_marker(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    # history replies open with another header than the generation prompt's
    tok.chat_template = (
        "{% for m in messages %}{% if m.role == 'assistant' and not loop.last %}{{ '<|im_start|>bot\\n' }}"
        "{% else %}{{ '<|im_start|>' + m.role + '\\n' }}{% endif %}{{ m.content + '<|im_end|>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )
    trained, masked = trained_and_masked(tok, get_template("tokenizer", tok), PLAIN)
    assert trained == ["Blue.<|im_end|>\n", "Red.<|im_end|>\n"]
    assert masked == ["<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>bot\n", Q2]
    # GLM-4.5 writes nothing after a reply: a reply ends where the next user turn starts
    tok.chat_template = (QWEN3_JINJA.parent / "zai-org-GLM-4.5.jinja").read_text(encoding="utf-8")
    trained, masked = trained_and_masked(tok, get_template("tokenizer", tok), AS_FIELD)
    assert trained == ["\n<think></think>\n2+3=5.", "\n<think>Five plus five.</think>\n10."]
    assert masked == ["[gMASK]<sop><|user|>\nWhat is 2+3?<|assistant|>", "<|user|>\nAnd 5+5?<|assistant|>"]


def test_qwen3_pairwise_prompt_is_the_generation_prompt(qwen3_tok):
    """DPO data: the prompt is the official generation prompt (history thinking dropped by the template), each
    completion the reply as the template writes it last."""
    conv = Conversation(AS_FIELD.messages[:3] + [Message("assistant", "10.", reasoning="Five plus five.")])
    conv.rejected = Message("assistant", "11.")
    template = get_template("tokenizer", qwen3_tok, enable_thinking=True)
    ex = encode_pairwise_example(conv, template, qwen3_tok, cutoff_len=4096)
    assert qwen3_tok.decode(ex["prompt_ids"]) == P1 + "2+3=5.<|im_end|>\n" + P2
    assert qwen3_tok.decode(ex["chosen_ids"]) == "<think>\nFive plus five.\n</think>\n\n10.<|im_end|>\n"
    assert qwen3_tok.decode(ex["rejected_ids"]) == EMPTY + "11.<|im_end|>\n"


GENERATION_MARKED = """\
{%- set ns = namespace(last_query=-1) %}
{%- for m in messages %}{%- if m.role == 'user' %}{%- set ns.last_query = loop.index0 %}{%- endif %}{%- endfor %}
{%- for m in messages %}
    {%- if m.role == 'user' %}
        {{- '<|im_start|>user\\n' + m.content + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>assistant\\n' }}
        {%- generation %}
            {%- if loop.index0 > ns.last_query and m.reasoning_content %}
                {{- '<think>\\n' + m.reasoning_content + '\\n</think>\\n\\n' }}
            {%- endif %}
            {{- m.content + '<|im_end|>' }}
        {%- endgeneration %}
        {{- '\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"""


def test_generation_marks_give_the_replies(tiny_tokenizer):
    """A history-rewriting template with {% generation %} marks: the replies are the marked tokens."""
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = GENERATION_MARKED
    template = get_template("tokenizer", tok)
    trained, masked = trained_and_masked(tok, template, AS_FIELD)
    assert trained == ["2+3=5.<|im_end|>", "<think>\nFive plus five.\n</think>\n\n10.<|im_end|>"]
    assert masked == [P1, "\n" + P2]
    prompt = template.encode_prompt(tok, Conversation(AS_FIELD.messages[:3]))
    assert tok.decode(prompt) == P1 + "2+3=5.<|im_end|>\n" + P2


def test_a_reply_that_cannot_be_found_is_one_clear_error(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    # history replies are rewritten (upper-cased): their text is nowhere in the whole rendering
    tok.chat_template = (
        "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' }}"
        "{% if m.role == 'assistant' and not loop.last %}{{ m.content | upper }}{% else %}{{ m.content }}{% endif %}"
        "{{ '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )
    conv = Conversation(PLAIN.messages, source="data.jsonl:3")
    with pytest.raises(UserError) as err:
        get_template("tokenizer", tok).encode_multiturn(tok, conv)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("data.jsonl:3: ")
    assert "reply 1 (assistant) cannot be found" in message
