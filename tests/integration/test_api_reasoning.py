"""The API splits a reasoning model's thinking from its answer, as vLLM and DeepSeek's API do: `reasoning_content`
beside `content` in the message and in stream deltas, tool calls from the answer only, thinking switched per
request (vLLM's chat_template_kwargs or a top-level enable_thinking). First against a stub engine (exact), then a
tiny model trained to think with `template: qwen3`, through the official openai client."""

from __future__ import annotations

import json
import time

import httpx2 as httpx
import openai
import pytest
from openai import OpenAI

from tuneforge.api.app import create_app
from tuneforge.api.server import BackgroundServer
from tuneforge.chat.engine import GenerationInfo, HuggingFaceEngine
from tuneforge.chat.reasoning import ReasoningSplitter, split_pieces
from tuneforge.config import load_config

THOUGHT, ANSWER = "The user says hi.\nI say hello.", "Hello, friend!"
REPLY = f"<think>\n{THOUGHT}\n</think>\n\n{ANSWER}"
HI = [{"role": "user", "content": "hi"}]


class ThinkingStub:
    """Writes `reply` in 3-character pieces, split as the real engine splits (None: a plain template, all content);
    without thinking it answers at once. Records each request's enable_thinking."""

    def __init__(self, reply: str = REPLY, reasoning: bool = True, tool_format: str = "qwen"):
        self.reply, self.reasoning, self.tool_format = reply, reasoning, tool_format
        self.thinking: list[bool | None] = []
        self.messages: list[list[dict]] = []

    def stream_parts(self, messages, system=None, tools=None, *, stop=None, cancel=None, info=None, **gen):
        enable = gen.pop("enable_thinking", None)
        self.thinking.append(enable)
        self.messages.append(messages)
        reply = ANSWER if enable is False else self.reply
        info.prompt_tokens = 5
        pieces = [reply[i : i + 3] for i in range(0, len(reply), 3)]
        info.completion_tokens = len(pieces)
        yield from split_pieces(pieces, ReasoningSplitter() if self.reasoning else None)


def ask(url: str, **kwargs):
    return OpenAI(base_url=url, api_key="none", max_retries=0).chat.completions.create(model="m", messages=HI, **kwargs)


def collect(chunks) -> tuple[str, str, list, str | None]:
    reasoning = content = ""
    calls, finish = [], None
    for chunk in chunks:
        for choice in chunk.choices:
            reasoning += getattr(choice.delta, "reasoning_content", None) or ""
            content += choice.delta.content or ""
            calls += choice.delta.tool_calls or []
            finish = choice.finish_reason or finish
    return reasoning, content, calls, finish


def test_reasoning_content_beside_content_streamed_and_not():
    with BackgroundServer(create_app(ThinkingStub())) as url:
        reply = ask(url)
        chunks = list(ask(url, stream=True))
    message = reply.choices[0].message
    assert (message.reasoning_content, message.content, reply.choices[0].finish_reason) == (THOUGHT, ANSWER, "stop")
    assert collect(chunks) == (THOUGHT, ANSWER, [], "stop")
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    thinking_deltas = [d for d in deltas if getattr(d, "reasoning_content", None)]
    assert len(thinking_deltas) > 3 and all(d.content is None for d in thinking_deltas)  # streamed as it comes
    first_answer = next(i for i, d in enumerate(deltas) if d.content)
    assert all(not getattr(d, "reasoning_content", None) for d in deltas[first_answer:])  # thinking, then answer


def test_a_plain_template_sends_no_reasoning_key_at_all():
    with BackgroundServer(create_app(ThinkingStub(reasoning=False))) as url:
        body = httpx.post(f"{url}/chat/completions", json={"messages": HI}, timeout=30).json()
        with httpx.stream("POST", f"{url}/chat/completions", json={"messages": HI, "stream": True}, timeout=30) as r:
            raw = r.read().decode()
    assert body["choices"][0]["message"] == {"role": "assistant", "content": REPLY}
    assert "reasoning_content" not in raw and json.dumps(REPLY)[1:4] in raw


def test_enable_thinking_per_request_either_way_and_the_next_request_thinks_again():
    stub = ThinkingStub()
    with BackgroundServer(create_app(stub)) as url:
        off = ask(url, extra_body={"chat_template_kwargs": {"enable_thinking": False}})
        off_top = ask(url, extra_body={"enable_thinking": False}, stream=True)
        default = ask(url)
        on = ask(url, extra_body={"chat_template_kwargs": {"enable_thinking": True}})
        both = ask(url, extra_body={"enable_thinking": True, "chat_template_kwargs": {"enable_thinking": False}})
        with pytest.raises(openai.BadRequestError) as err:
            ask(url, extra_body={"chat_template_kwargs": {"enable_thinking": "no"}})
    assert stub.thinking == [False, False, None, True, True]  # the top-level field wins
    assert (off.choices[0].message.content, getattr(off.choices[0].message, "reasoning_content", None)) == (
        ANSWER,
        None,
    )
    assert collect(off_top)[:2] == ("", ANSWER)
    assert default.choices[0].message.reasoning_content == THOUGHT == on.choices[0].message.reasoning_content
    assert both.choices[0].message.reasoning_content == THOUGHT
    assert "enable_thinking" in err.value.body["message"]


def test_thinking_sent_back_in_history_reaches_the_engine_as_reasoning_content():
    stub = ThinkingStub()
    history = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": ANSWER, "reasoning_content": THOUGHT},
        {"role": "user", "content": "and?"},
        {"role": "assistant", "content": "Fine.", "reasoning": "vLLM's name"},
        {"role": "user", "content": "ok"},
    ]
    with BackgroundServer(create_app(stub)) as url:
        OpenAI(base_url=url, api_key="none", max_retries=0).chat.completions.create(model="m", messages=history)
    assert [m.get("reasoning_content") for m in stub.messages[0]] == [None, THOUGHT, None, "vLLM's name", None]


def test_tool_calls_come_from_the_answer_only():
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    thinking_of_a_call = f"<think>\nI could write {call} but I know it.\n</think>\n\nSunny."
    with BackgroundServer(create_app(ThinkingStub(thinking_of_a_call))) as url:
        reply = ask(url, tools=tools)
        streamed = collect(ask(url, tools=tools, stream=True))
    assert reply.choices[0].finish_reason == "stop" and reply.choices[0].message.tool_calls is None
    assert reply.choices[0].message.content == "Sunny." == streamed[1] and call in streamed[0]

    with BackgroundServer(create_app(ThinkingStub(f"<think>\nAsk the tool.\n</think>\n\n{call}"))) as url:
        reply = ask(url, tools=tools)
        reasoning, content, calls, finish = collect(ask(url, tools=tools, stream=True))
    message = reply.choices[0].message
    assert reply.choices[0].finish_reason == "tool_calls" == finish and message.reasoning_content == "Ask the tool."
    assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert (reasoning, content, [c.function.name for c in calls]) == ("Ask the tool.", "", ["get_weather"])


# ---- a tiny model trained to think (tests/conftest.py: thinking_adapter_dir) ----------------------------------------
@pytest.fixture(scope="module")
def thinking_engine(tiny_model_dir, thinking_adapter_dir):
    """The tiny model with a LoRA that memorised three replies that think first (template qwen3, read from the run)."""
    chat = {"model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": str(thinking_adapter_dir)}
    return HuggingFaceEngine(load_config(None, {**chat, "do_sample": False, "max_new_tokens": 32}))


def test_a_model_trained_to_think_answers_with_reasoning_content(thinking_engine):
    engine = thinking_engine
    assert engine.template.name == "qwen3"
    question = [{"role": "user", "content": "Add 2 and 3."}]
    with BackgroundServer(create_app(engine)) as url:
        client = OpenAI(base_url=url, api_key="none", max_retries=0)
        reply = client.chat.completions.create(model="m", messages=question)
        reasoning, content, _, finish = collect(
            client.chat.completions.create(model="m", messages=question, stream=True)
        )
        off = client.chat.completions.create(
            model="m", messages=question, extra_body={"chat_template_kwargs": {"enable_thinking": False}}
        )
        again = client.chat.completions.create(model="m", messages=question)
    message = reply.choices[0].message
    assert (message.reasoning_content, message.content) == ("2 plus 3 is 5.", "The sum is 5.")
    assert (reasoning, content, finish) == ("2 plus 3 is 5.", "The sum is 5.", "stop")
    # thinking off for one request: the prompt ends with the empty thought (2 tokens or more longer)
    thinking_prompt = engine.prompt_ids(question)
    quiet_prompt = engine.prompt_ids(question, enable_thinking=False)
    quiet_text = engine.tokenizer.decode(quiet_prompt, skip_special_tokens=False)
    assert quiet_text == engine.tokenizer.decode(thinking_prompt, skip_special_tokens=False) + "<think>\n\n</think>\n\n"
    assert off.usage.prompt_tokens == len(quiet_prompt) and reply.usage.prompt_tokens == len(thinking_prompt)
    assert getattr(off.choices[0].message, "reasoning_content", None) is None
    # the shared template was not switched: the next request thinks again
    assert engine.template.enable_thinking is True and again.choices[0].message.reasoning_content == "2 plus 3 is 5."


def test_the_engine_splits_and_the_cli_chat_shows_the_thinking(thinking_engine):
    import io

    from tuneforge.chat.repl import run_chat

    assert thinking_engine.chat_parts([{"role": "user", "content": "Who are you?"}]) == (
        "A name question.",
        "I am Forge.",
    )
    out = io.StringIO()
    run_chat(thinking_engine, queries=["Name a colour."], out=out)
    assert out.getvalue() == "User: Name a colour.\nThinking: Pick one.\nAssistant: Blue.\n"


def test_concurrent_requests_with_and_without_thinking_do_not_leak(thinking_engine):
    from concurrent.futures import ThreadPoolExecutor

    question = [{"role": "user", "content": "Add 2 and 3."}]
    with BackgroundServer(create_app(thinking_engine)) as url:
        client = OpenAI(base_url=url, api_key="none", max_retries=0)

        def one(i: int):
            extra = {"chat_template_kwargs": {"enable_thinking": i % 2 == 0}}
            time.sleep(0.01 * i)
            return client.chat.completions.create(model="m", messages=question, max_tokens=4, extra_body=extra)

        with ThreadPoolExecutor(6) as pool:
            replies = list(pool.map(one, range(6)))
    quiet, thinking = (len(thinking_engine.prompt_ids(question, enable_thinking=e)) for e in (False, True))
    assert [r.usage.prompt_tokens for r in replies] == [thinking, quiet] * 3


def test_the_config_enable_thinking_false_reaches_chat(thinking_engine):
    model = thinking_engine.cfg.model
    cfg = {
        "model_name_or_path": model.model_name_or_path,
        "adapter_name_or_path": model.adapter_name_or_path,
        "do_sample": False,
        "max_new_tokens": 8,
        "enable_thinking": False,
    }
    quiet = HuggingFaceEngine(load_config(None, cfg))
    question = [{"role": "user", "content": "Add 2 and 3."}]
    assert quiet.template.enable_thinking is False
    assert quiet.prompt_ids(question) == thinking_engine.prompt_ids(question, enable_thinking=False)
    assert quiet.prompt_ids(question, enable_thinking=True) == thinking_engine.prompt_ids(question)
    assert quiet.chat_parts(question)[0] is None  # the prompt closed the thought: no reasoning


class Scripted:
    """A model whose generate() writes `reply` (token ids) whatever the prompt, through the streamer."""

    def __init__(self, config, reply: list[int]):
        self.config, self.reply, self.prompts = config, reply, []

    def generate(self, input_ids, streamer, **kwargs):
        import torch

        self.prompts.append(input_ids[0].tolist())
        streamer.put(input_ids.cpu())
        for token in self.reply:
            streamer.put(torch.tensor([token]))
        streamer.end()


@pytest.mark.parametrize("official", ["deepseek-ai-DeepSeek-R1-Distill-Qwen-7B", "Qwen-Qwen3-8B"])
def test_a_tokenizer_chat_template_that_opens_the_thought_or_closes_it(tiny_model_dir, official):
    """DeepSeek-R1's generation prompt ends with <think>: the reply starts inside the thought. Qwen3's, given
    enable_thinking false, ends with the empty thought: the reply is all answer."""
    from pathlib import Path

    from tuneforge.data.template import get_template

    cfg = {"model_name_or_path": str(tiny_model_dir), "template": "qwen3", "max_new_tokens": 32}
    engine = HuggingFaceEngine(load_config(None, cfg))
    tok = engine.tokenizer
    fixtures = Path(__file__).parent.parent / "fixtures" / "chat_templates"
    tok.chat_template = (fixtures / f"{official}.jinja").read_text(encoding="utf-8")
    engine.template = get_template("tokenizer", tok)
    written = "plan it\n</think>\n\nThe answer."
    engine.model = Scripted(engine.model.config, tok.encode(written, add_special_tokens=False) + [tok.eos_token_id])
    prompt = tok.decode(engine.prompt_ids(HI), skip_special_tokens=False)
    if official.startswith("deepseek"):
        assert prompt.endswith("<think>\n")
        assert engine.chat_parts(HI) == ("plan it", "The answer.")
    else:
        quiet = tok.decode(engine.prompt_ids(HI, enable_thinking=False), skip_special_tokens=False)
        assert quiet.endswith("<think>\n\n</think>\n\n") and not prompt.endswith("</think>\n\n")
        assert engine.chat_parts(HI, enable_thinking=False) == (None, written)  # no thought opened: all answer
        assert engine.template.enable_thinking is not False  # the shared template was not switched


def test_thought_words_made_of_special_tokens_survive_skip_special_tokens(tiny_model_dir):
    """Gemma 4 / gpt-oss write their thought words with special tokens: the text keeps them (less the stop token),
    so the split still finds the thought. The tiny tokenizer's <start_of_turn> / <end_of_turn> are special."""
    import dataclasses

    cfg = {"model_name_or_path": str(tiny_model_dir), "template": "qwen3", "max_new_tokens": 32}
    engine = HuggingFaceEngine(load_config(None, cfg))
    assert engine.cfg.generation.skip_special_tokens
    engine.template = dataclasses.replace(engine.template, thought_words=("<start_of_turn>thought\n", "<end_of_turn>"))
    tok = engine.tokenizer
    written = "<start_of_turn>thought\nplan it<end_of_turn>The answer."
    reply = tok.encode(written, add_special_tokens=False) + [tok.convert_tokens_to_ids("<|im_end|>")]

    engine.model = Scripted(engine.model.config, reply)
    info = GenerationInfo()
    assert "".join(engine.stream(HI, info=info)) == written and info.completion_tokens == len(reply)
    assert engine.chat_parts(HI) == ("plan it", "The answer.")
