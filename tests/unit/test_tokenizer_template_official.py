"""`template: tokenizer` trains with the model's OFFICIAL format: for each of the 50 official chat templates in
tests/fixtures/chat_templates (tokenizer set up as tests/official_templates.py does), a conversation encoded for SFT
(encode_sft_example with get_template("tokenizer", tok)) is checked three ways:
(a) its input_ids decode to exactly apply_chat_template(messages, tokenize=False) of the official template;
(b) its trained spans (labels != -100) decode, one by one, to each reply as the official rendering writes it plus the
    template's end-of-reply text. The expected spans come from the official rendering and the data below (the text
    that opens a reply, the text that ends one), not from the implementation: a span runs from the end of the first
    reply header after the previous span to the end of the first end-of-reply text after the reply's own text;
(c) the prompt for generation (encode_prompt) decodes to apply_chat_template(..., add_generation_prompt=True).
Cases: `chat` (a system prompt and 3 user / assistant turns), `think` (every reply with Message.reasoning) and `tool`
(a tool call and its result in the history, then two more turns). What a template cannot do is listed as data with
the reason, and test_limits_are_real checks the official template really refuses it (docs/templates.md lists them).
"""

from __future__ import annotations

import json
import re
from unittest import mock

import pytest

from official_templates import CALL, RESULT, SYSTEM, TOOLS, _FixedDatetime, family_tokenizer, load_families
from tuneforge.data.conversation import ASSISTANT, FUNCTION, OBSERVATION, USER, Conversation, Message
from tuneforge.errors import UserError

FAMILIES = {f.fixture[: -len(".jinja")]: f for f in load_families()}
TURNS = [("What is 2 + 2?", "2 + 2 = 4."), ("And 3 + 3?", "3 + 3 = 6."), ("And 4 + 4?", "4 + 4 = 8.")]
TOOL_TURNS = [
    (USER, "What is the weather in Paris?"),
    (FUNCTION, json.dumps(CALL)),
    (OBSERVATION, RESULT),
    (ASSISTANT, "It is 22 degrees in Paris."),
    (USER, "Thanks!"),
    (ASSISTANT, "You are welcome."),
]
CALL_ID = "call00001"  # what TokenizerTemplate numbers the first tool call (Mistral wants 9 characters)
KWARGS = {"enable_thinking": True}  # TuneForge's default (LF's), passed to every chat_template

CHATML = (("<|im_start|>assistant\n",), ("<|im_end|>\n",))
LLAMA3 = (("<|start_header_id|>assistant<|end_header_id|>\n\n",), ("<|eot_id|>",))
DEEPSEEK3 = (("<｜Assistant｜>", "<｜tool▁outputs▁end｜>"), ("<｜end▁of▁sentence｜>",))
PHI3 = (("<|assistant|>\n",), ("<|end|>\n",))
GEMMA = (("<start_of_turn>model\n",), ("<end_of_turn>\n",))
GRANITE = (("<|start_of_role|>assistant<|end_of_role|>",), ("<|end_of_text|>\n",))
COHERE = (("<|CHATBOT_TOKEN|>",), ("<|END_OF_TURN_TOKEN|>",))
GLM = (("<|assistant|>",), ())  # GLM writes nothing after a reply: it ends where the next turn starts
# fixture -> (texts that open a reply, texts that end one); read off the official templates
REPLY = {
    "Qwen-Qwen2.5-7B-Instruct": CHATML,
    "Qwen-Qwen2-VL-7B-Instruct": CHATML,
    "Qwen-Qwen3-8B": CHATML,
    "Qwen-Qwen3-4B-Instruct-2507": CHATML,
    "Qwen-Qwen3-VL-8B-Instruct": CHATML,
    "Qwen-Qwen3.5-4B": CHATML,
    "Qwen-Qwen3.5-2B": CHATML,
    "Qwen-Qwen3.6-27B": CHATML,
    "meta-llama-Llama-2-7b-chat-hf": (("[/INST]",), (" </s>",)),
    "meta-llama-Meta-Llama-3-8B-Instruct": LLAMA3,
    "meta-llama-Llama-3.1-8B-Instruct": LLAMA3,
    "meta-llama-Llama-3.2-3B-Instruct": LLAMA3,
    "meta-llama-Llama-4-Scout-17B-16E-Instruct": (("<|header_start|>assistant<|header_end|>\n\n",), ("<|eot|>",)),
    "google-gemma-1.1-2b-it": GEMMA,
    "google-gemma-2-2b-it": GEMMA,
    "google-gemma-3-27b-it": GEMMA,
    "google-gemma-4-E2B-it": (("<|turn>model\n",), ("<turn|>\n",)),
    "deepseek-ai-DeepSeek-V2-Chat": (("\n\nAssistant:",), ("<｜end▁of▁sentence｜>",)),
    "deepseek-ai-deepseek-coder-33b-instruct": (("### Response:\n",), ("\n<|EOT|>\n",)),
    "deepseek-ai-DeepSeek-V3-0324": DEEPSEEK3,
    "deepseek-ai-DeepSeek-R1": DEEPSEEK3,
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-7B": DEEPSEEK3,
    "THUDM-chatglm3-6b": GLM,
    "THUDM-glm-4-9b-chat": GLM,
    "zai-org-GLM-4.5": GLM,
    "zai-org-GLM-4.7-Flash": (("<|assistant|></think>", "<|assistant|><think>"), ()),
    "mistralai-Mixtral-8x7B-Instruct-v0.1": (("[/INST]",), ("</s>",)),
    "mistralai-Mistral-Small-3.2-24B-Instruct-2506": (("[/INST]", "[/TOOL_RESULTS]"), ("</s>",)),
    "microsoft-Phi-3-mini-4k-instruct": PHI3,
    "microsoft-Phi-3.5-mini-instruct": PHI3,
    "microsoft-Phi-3-small-8k-instruct": PHI3,
    "microsoft-phi-4": (("<|im_start|>assistant<|im_sep|>",), ("<|im_end|>",)),
    "microsoft-Phi-4-mini-instruct": (("<|assistant|>",), ("<|end|>",)),
    "openai-gpt-oss-20b": (("<|start|>assistant",), ("<|end|>", "<|call|>", "<|return|>")),
    "internlm-internlm2-chat-20b": CHATML,
    "ByteDance-Seed-Seed-OSS-36B-Instruct": (("<seed:bos>assistant\n",), ("<seed:eos>",)),
    "CohereForAI-c4ai-command-r-plus": COHERE,
    "CohereLabs-aya-expanse-8b": COHERE,
    "ibm-granite-granite-3.0-8b-instruct": GRANITE,
    "ibm-granite-granite-3.3-2b-instruct": GRANITE,
    "LiquidAI-LFM2-1.2B": CHATML,
    "01-ai-Yi-34B-Chat": CHATML,
    "01-ai-Yi-1.5-6B-Chat": CHATML,
    "inclusionAI-Ling-lite": (("<role>ASSISTANT</role>",), ()),
    "infly-OpenCoder-1.5B-Instruct": CHATML,
    "upstage-SOLAR-10.7B-Instruct-v1.0": (("### Assistant:\n",), ()),
    "openchat-openchat-3.5-0106": (("GPT4 Correct Assistant:",), ("<|end_of_turn|>",)),
    "teknium-OpenHermes-2.5-Mistral-7B": CHATML,
    "HuggingFaceTB-SmolLM2-135M-Instruct": CHATML,
    "LGAI-EXAONE-EXAONE-3.5-7.8B-Instruct": (("[|assistant|]",), ("[|endofturn|]\n",)),
}
# where a template writes nothing after a reply: the turn that may follow it (or the end of the text)
NEXT_TURN = {"<|assistant|>": ("<|user|>", "<|observation|>"), "<role>": ("<role>",), "###": ("### User:",)}
# the generation prompt opens the thinking ('<|im_start|>assistant\n<think>\n'): the last reply is trained after it
PREFILL = {"Qwen-Qwen3.5-4B": "<think>\n", "Qwen-Qwen3.5-2B": "<think>\n", "Qwen-Qwen3.6-27B": "<think>\n"}
# the EOS these write after the last reply only (not after a reply followed by a turn): it is left out, so the
# sequence ends with the reply's own end, `<|end|>`, as every reply in the history does
TRAILING = {
    name: "<|endoftext|>"
    for name in (
        "microsoft-Phi-3-mini-4k-instruct",
        "microsoft-Phi-3.5-mini-instruct",
        "microsoft-Phi-3-small-8k-instruct",
        "microsoft-Phi-4-mini-instruct",
    )
}

# ---- what the official templates cannot do (checked by test_limits_are_real) ------------------------------------
NO_SYSTEM = {  # trained without the system prompt
    "google-gemma-1.1-2b-it": "raises 'System role not supported'",
    "google-gemma-2-2b-it": "raises 'System role not supported'",
    "mistralai-Mixtral-8x7B-Instruct-v0.1": "raises on a system turn (only alternating user / assistant roles)",
}
THINKING_DROPPED = {  # the reasoning is trained as the template renders it: not at all
    "deepseek-ai-DeepSeek-R1": "writes only the text after '</think>' of every reply, the last one too",
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-7B": "writes only the text after '</think>' of every reply, the last one too",
}
_NO_CALLS = "writes no tool calls (an assistant turn's tool_calls are left out): a clear UserError"
_NO_TOOL_ROLE = "raises on a tool call / tool turn (only alternating user / assistant roles): a clear UserError"
NO_TOOLS = {
    **{
        name: _NO_CALLS
        for name in (
            "Qwen-Qwen2-VL-7B-Instruct",
            "meta-llama-Meta-Llama-3-8B-Instruct",
            "deepseek-ai-DeepSeek-V2-Chat",
            "deepseek-ai-deepseek-coder-33b-instruct",
            "deepseek-ai-DeepSeek-V3-0324",
            "deepseek-ai-DeepSeek-R1-Distill-Qwen-7B",
            "THUDM-chatglm3-6b",
            "THUDM-glm-4-9b-chat",
            "microsoft-Phi-3-mini-4k-instruct",
            "microsoft-Phi-3.5-mini-instruct",
            "microsoft-Phi-3-small-8k-instruct",
            "microsoft-phi-4",
            "microsoft-Phi-4-mini-instruct",
            "internlm-internlm2-chat-20b",
            "ibm-granite-granite-3.0-8b-instruct",
            "ibm-granite-granite-3.3-2b-instruct",
            "01-ai-Yi-34B-Chat",
            "01-ai-Yi-1.5-6B-Chat",
            "inclusionAI-Ling-lite",
            "infly-OpenCoder-1.5B-Instruct",
            "upstage-SOLAR-10.7B-Instruct-v1.0",
            "openchat-openchat-3.5-0106",
            "teknium-OpenHermes-2.5-Mistral-7B",
            "HuggingFaceTB-SmolLM2-135M-Instruct",
            "LGAI-EXAONE-EXAONE-3.5-7.8B-Instruct",
        )
    },
    **{
        name: _NO_TOOL_ROLE
        for name in (
            "meta-llama-Llama-2-7b-chat-hf",
            "google-gemma-1.1-2b-it",
            "google-gemma-2-2b-it",
            "google-gemma-3-27b-it",
            "mistralai-Mixtral-8x7B-Instruct-v0.1",
            "CohereForAI-c4ai-command-r-plus",
            "CohereLabs-aya-expanse-8b",
        )
    },
    "google-gemma-4-E2B-it": "writes the tool result and the reply after it inside the tool-calling model turn "
    "('<tool_call|><|tool_response>...<tool_response|>It is 22'): no reply header to split at, a clear UserError",
}
NO_END = {  # the replies are trained without an end-of-reply text (the model stops at the next turn's header)
    name: "writes nothing after a reply" for name, (_, ends) in REPLY.items() if not ends
}

CASES = [
    (name, case) for name in FAMILIES for case in ("chat", "think", "tool") if not (case == "tool" and name in NO_TOOLS)
]


@pytest.fixture(scope="module")
def base_tokenizer_dir(tmp_path_factory):
    from tuneforge.model.tiny import build_tokenizer

    out = tmp_path_factory.mktemp("official-tokenizer-template") / "tokenizer"
    build_tokenizer(600).save_pretrained(out)
    return out


def _conversation(name: str, case: str) -> Conversation:
    system = "" if name in NO_SYSTEM else SYSTEM
    if case == "tool":
        return Conversation([Message(r, c) for r, c in TOOL_TURNS], system=system, tools=json.dumps(TOOLS))
    messages = []
    for k, (question, answer) in enumerate(TURNS):
        reasoning = f"Add the numbers, step {k}." if case == "think" else None
        messages += [Message(USER, question), Message(ASSISTANT, answer, reasoning=reasoning)]
    return Conversation(messages, system=system)


def _official_messages(name: str, case: str, chat_template: str) -> tuple[list[dict], list | None]:
    """The conversation as the official template reads it (OpenAI / HF messages): a reply's reasoning in
    `reasoning_content` (or gpt-oss' `thinking`) when the template reads that field, else in the content as
    '<think>\\n...\\n</think>\\n\\n' + answer (docs/thinking.md); tool calls with CALL_ID."""
    conv = _conversation(name, case)
    out = [{"role": "system", "content": conv.system}] if conv.system else []
    for msg in conv.messages:
        if msg.role == FUNCTION:
            args = CALL["arguments"]
            args = json.dumps(args) if FAMILIES[name].arguments_as_text else args
            function = {"name": CALL["name"], "arguments": args}
            out.append(
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"id": CALL_ID, "type": "function", "function": function}],
                }
            )
        elif msg.role == OBSERVATION:
            out.append({"role": "tool", "tool_call_id": CALL_ID, "content": msg.content})
        elif msg.reasoning and "reasoning_content" in chat_template:
            out.append({"role": msg.role, "content": msg.content, "reasoning_content": msg.reasoning})
        elif msg.reasoning and re.search(r"message(\.thinking\b|\[['\"]thinking['\"]\])", chat_template):
            out.append({"role": msg.role, "content": msg.content, "thinking": msg.reasoning})
        elif msg.reasoning:
            out.append({"role": msg.role, "content": f"<think>\n{msg.reasoning}\n</think>\n\n{msg.content}"})
        else:
            out.append({"role": msg.role, "content": msg.content})
    return out, TOOLS if case == "tool" else None


def _render(tok, messages, tools, generation=False) -> str:
    from transformers.utils import chat_template_utils

    with mock.patch.object(chat_template_utils, "datetime", _FixedDatetime):
        return tok.apply_chat_template(
            messages, tools=tools, add_generation_prompt=generation, tokenize=False, **KWARGS
        )


def _expected_spans(name: str, conv: Conversation, full: str) -> list[str]:
    """Each reply's span in the official rendering: from the end of the first reply header after the previous
    span (past the generation prompt's opened think block for the last reply) to the end of the first
    end-of-reply text after the reply's own text (its answer, or the called function's name)."""
    headers, ends = REPLY[name]
    replies = [m for m in conv.messages if m.role in (ASSISTANT, FUNCTION)]
    spans, pos = [], 0
    for k, msg in enumerate(replies):
        start = min((at + len(h), -len(h)) for h in headers if (at := full.find(h, pos)) >= 0)[0]
        if k == len(replies) - 1 and full.startswith(PREFILL.get(name, "\0"), start):
            start += len(PREFILL[name])
        own = CALL["name"] if msg.role == FUNCTION else msg.content
        after = full.index(own, start) + len(own)
        if ends:
            end = min(at + len(e) for e in ends if (at := full.find(e, after)) >= 0)
        else:
            turns = next(v for k2, v in NEXT_TURN.items() if headers[0].startswith(k2))
            end = min([at for t in turns if (at := full.find(t, after)) >= 0] or [len(full)])
        spans.append(full[start:end])
        pos = end
    return spans


def _trained_spans(tok, ids: list[int], labels: list[int]) -> list[str]:
    spans, run = [], []
    for token, label in zip(ids, labels, strict=True):
        if label != -100:
            assert label == token
            run.append(token)
        elif run:
            spans.append(run)
            run = []
    return [tok.decode(s, skip_special_tokens=False) for s in [*spans, run] if s]


def _setup(base_dir, name: str):
    from tuneforge.data.template import get_template

    tok = family_tokenizer(base_dir, FAMILIES[name])
    template = get_template("tokenizer", tok)
    template.fix_tokenizer(tok)
    return tok, template


@pytest.mark.parametrize(("name", "case"), CASES, ids=[f"{n}-{c}" for n, c in CASES])
def test_tokenizer_template_trains_the_official_rendering(base_tokenizer_dir, name, case):
    from transformers.utils import chat_template_utils

    from tuneforge.data.sft import encode_sft_example

    tok, template = _setup(base_tokenizer_dir, name)
    conv = _conversation(name, case)
    messages, tools = _official_messages(name, case, tok.chat_template)
    official = _render(tok, messages, tools)
    with mock.patch.object(chat_template_utils, "datetime", _FixedDatetime):
        example = encode_sft_example(conv, template, tok, cutoff_len=100_000)
        prompt_conv = Conversation(conv.messages[:-1], system=conv.system, tools=conv.tools)
        prompt = tok.decode(template.encode_prompt(tok, prompt_conv), skip_special_tokens=False)
    ids, labels = example["input_ids"], example["labels"]
    # (a) the text trained on is the official rendering
    assert tok.decode(ids, skip_special_tokens=False) + TRAILING.get(name, "") == official
    # (b) exact masks: each reply as rendered plus its end-of-reply text, nothing else
    spans = _trained_spans(tok, ids, labels)
    assert spans == _expected_spans(name, conv, official)
    if not NO_END.get(name):
        ends = REPLY[name][1]
        assert all(span.endswith(ends) for span in spans), spans
    if case == "think" and name not in THINKING_DROPPED:
        assert conv.messages[-1].reasoning in spans[-1], spans[-1]
    # (c) the prompt for generation is the official one
    assert prompt == _render(tok, messages[:-1], tools, generation=True)


LIMITS = (
    [(n, "system", why) for n, why in NO_SYSTEM.items()]
    + [(n, "think", why) for n, why in THINKING_DROPPED.items()]
    + [(n, "tool", why) for n, why in NO_TOOLS.items()]
)


@pytest.mark.parametrize(("name", "case", "why"), LIMITS, ids=[f"{n}-{c}" for n, c, _ in LIMITS])
def test_limits_are_real(base_tokenizer_dir, name, case, why):
    """A listed limit is the official template's: it refuses a system turn, drops the thinking, or writes no tool
    call in any of the usual message dialects (arguments as object / JSON text, content "" / None) — and our
    template then says so in one line instead of training something else."""
    tok, template = _setup(base_tokenizer_dir, name)
    if case == "system":
        messages, _ = _official_messages(name, "chat", tok.chat_template)
        with pytest.raises(Exception, match="(?i)system|alternate") as info:
            _render(tok, [{"role": "system", "content": SYSTEM}, *messages], None)
        assert type(info.value).__name__ == "TemplateError"
        return
    if case == "think":
        messages, _ = _official_messages(name, "think", tok.chat_template)
        assert "Add the numbers" not in _render(tok, messages, None)
        return
    messages, _ = _official_messages(name, "tool", tok.chat_template)
    if name == "google-gemma-4-E2B-it":
        assert "<tool_response|>It is 22 degrees" in _render(tok, messages, TOOLS)
    else:
        for as_text in (False, True):
            for content in ("", None):
                dialect = [_dialect(m, as_text, content) for m in messages]
                try:
                    rendered = _render(tok, dialect, None)
                except Exception as e:  # noqa: BLE001 - the template refuses the roles
                    assert type(e).__name__ in ("TemplateError", "UndefinedError", "TypeError"), e
                    continue
                assert CALL["name"] not in rendered, why
    with pytest.raises(UserError) as info:
        template.encode_multiturn(tok, _conversation(name, "tool"))
    assert "\n" not in str(info.value)


def _dialect(msg: dict, as_text: bool, content) -> dict:
    if "tool_calls" not in msg:
        return msg
    call = msg["tool_calls"][0]
    args = call["function"]["arguments"]
    args = (args if isinstance(args, str) else json.dumps(args)) if as_text else CALL["arguments"]
    return {**msg, "content": content, "tool_calls": [{**call, "function": {**call["function"], "arguments": args}}]}


def test_every_fixture_is_covered():
    assert set(REPLY) == set(FAMILIES)
    trained_tools = {n for n, c in CASES if c == "tool"}
    assert len(trained_tools) >= 15, sorted(trained_tools)
