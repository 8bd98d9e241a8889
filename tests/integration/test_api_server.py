"""The API's HTTP behaviour against a stub engine (fast, exact): OpenAI client round trips, tool calls in each
family's tool format, streamed and not, errors as OpenAI JSON, limits, the API key, client disconnects, overload."""

from __future__ import annotations

import json
import threading
import time

import httpx2 as httpx
import openai
import pytest
from openai import OpenAI

from tuneforge.api.app import ServerSettings, create_app
from tuneforge.api.server import BackgroundServer
from tuneforge.chat.engine import to_conversation
from tuneforge.chat.stops import StopFilter
from tuneforge.chat.tools import split_tool_calls
from tuneforge.data.tool_formats import FunctionCall, get_tool_format

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


class StubEngine:
    """Writes `reply` a few characters at a time, honours `cancel` like the real engine and records each call."""

    def __init__(self, reply: str = "Hello there, friend.", tool_format: str = "qwen", delay: float = 0.0):
        self.reply, self.tool_format, self.delay = reply, tool_format, delay
        self.calls: list[dict] = []
        self.produced = 0

    def stream(self, messages, system=None, tools=None, *, stop=None, cancel=None, info=None, **gen):
        self.calls.append({"messages": messages, "tools": tools, "stop": stop, "gen": gen})
        to_conversation(messages, system, tools)
        info.prompt_tokens = 7
        pieces = [self.reply[i : i + 3] for i in range(0, len(self.reply), 3)]
        for piece in pieces:
            if cancel is not None and cancel.is_set():
                break
            time.sleep(self.delay)
            self.produced += 1
            info.completion_tokens += 1
            yield piece
        info.finish_reason = "stop"


def serve(engine, **settings):
    return BackgroundServer(create_app(engine, ServerSettings(**settings)))


def ask(url, key="none", **kwargs):
    body = {"model": "anything", "messages": [{"role": "user", "content": "weather in Paris?"}], **kwargs}
    return OpenAI(base_url=url, api_key=key, max_retries=0).chat.completions.create(**body)


def collect(stream):
    content, calls, finish = "", [], None
    for chunk in stream:
        for choice in chunk.choices:
            content += choice.delta.content or ""
            calls += choice.delta.tool_calls or []
            finish = choice.finish_reason or finish
    return content, calls, finish


@pytest.mark.parametrize("tool_format", ["qwen", "default", "qwen3_5", "minimax1"])
def test_tool_call_in_the_template_format_becomes_openai_tool_calls(tool_format):
    call_text = get_tool_format(tool_format).function_text([FunctionCall("get_weather", '{"city": "Paris"}')])
    engine = StubEngine("Let me check.\n" + call_text, tool_format)
    with serve(engine) as url:
        reply = ask(url, tools=[WEATHER])
        content, calls, finish = collect(ask(url, tools=[WEATHER], stream=True))
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert (call.type, call.function.name, json.loads(call.function.arguments)) == (
        "function",
        "get_weather",
        {"city": "Paris"},
    )
    assert reply.choices[0].message.content == "Let me check."
    assert json.loads(engine.calls[0]["tools"]) == [WEATHER["function"]]  # tools reach the template
    # streamed: the text before the call streams as content, then the call arrives whole
    assert finish == "tool_calls" and content.strip() == "Let me check."
    assert [(c.index, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        (0, "get_weather", {"city": "Paris"})
    ]
    assert calls[0].id.startswith("call_")


@pytest.mark.parametrize(
    ("tool_format", "reply"),
    [
        ("llama3", '{"name": "get_weather", "parameters": {"city": "Paris"}}'),
        ("mistral", '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}]'),  # token kept
        ("mistral", '[{"name": "get_weather", "arguments": {"city": "Paris"}}]'),  # token decoded away
    ],
)
def test_a_whole_reply_call_llama3_or_mistral_becomes_tool_calls_streamed_or_not(tool_format, reply):
    """Formats whose call is the whole reply have no marker: with tools, a streamed reply is held until it ends."""
    with serve(StubEngine(reply, tool_format)) as url:
        answer = ask(url, tools=[WEATHER])
        content, calls, finish = collect(ask(url, tools=[WEATHER], stream=True))
    message = answer.choices[0].message
    assert answer.choices[0].finish_reason == "tool_calls" and message.content is None
    assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert (content, finish) == ("", "tool_calls")
    assert [(c.index, c.function.name, c.function.arguments) for c in calls] == [
        (0, "get_weather", '{"city": "Paris"}')
    ]
    with serve(StubEngine("It is sunny in Paris.", tool_format)) as url:  # no call: the held text arrives as content
        text_reply = ask(url, tools=[WEATHER])
        serve_text = collect(ask(url, tools=[WEATHER], stream=True))
    assert (
        text_reply.choices[0].message.content == "It is sunny in Paris."
        and not text_reply.choices[0].message.tool_calls
    )
    assert serve_text == ("It is sunny in Paris.", [], "stop")


def test_text_without_a_valid_call_stays_content():
    broken = "I will call <tool_call>{not json}</tool_call>"
    with serve(StubEngine(broken)) as url:
        reply = ask(url, tools=[WEATHER])
        content, calls, finish = collect(ask(url, tools=[WEATHER], stream=True))
        no_tools = ask(url, tool_choice="none", tools=[WEATHER])
    assert reply.choices[0].message.content == broken and reply.choices[0].finish_reason == "stop"
    assert (content, calls, finish) == (broken, [], "stop")
    assert no_tools.choices[0].message.tool_calls is None


def test_tool_results_and_calls_in_history_reach_the_engine():
    engine = StubEngine("Sunny.")
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"id": "b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "a", "content": "sunny"},
        {"role": "tool", "tool_call_id": "b", "content": "rainy"},
    ]
    with serve(engine) as url:
        reply = OpenAI(base_url=url, api_key="x").chat.completions.create(model="m", messages=history, tools=[WEATHER])
    conv = to_conversation(engine.calls[0]["messages"])
    assert reply.choices[0].message.content == "Sunny."
    assert conv.system == "Be brief."
    assert [m.role for m in conv.messages] == ["user", "function", "observation"]
    assert json.loads(conv.messages[1].content) == [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": {"city": "Rome"}},
    ]
    assert conv.messages[2].content == "sunny\nrainy"


def test_sampling_fields_map_to_generate_and_n_gives_n_choices():
    engine = StubEngine("abcdef")
    with serve(engine) as url:
        reply = ask(url, n=3, temperature=0.5, top_p=0.9, max_tokens=5, stop=["x", "y"])
        ask(url, temperature=0)
        streamed = list(ask(url, n=2, stream=True, stream_options={"include_usage": True}))
    assert [c.index for c in reply.choices] == [0, 1, 2] and {c.message.content for c in reply.choices} == {"abcdef"}
    assert engine.calls[0]["gen"] == {"do_sample": True, "temperature": 0.5, "top_p": 0.9, "max_new_tokens": 5}
    assert engine.calls[0]["stop"] == ["x", "y"]
    assert engine.calls[3]["gen"] == {"do_sample": False}
    assert reply.usage.prompt_tokens == 7 and reply.usage.completion_tokens == 3 * 2
    texts = {0: "", 1: ""}
    for chunk in streamed[:-1]:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == {0: "abcdef", 1: "abcdef"}
    assert streamed[-1].choices == [] and streamed[-1].usage.completion_tokens == 4


def test_raw_sse_format_ends_with_done():
    with serve(StubEngine("hi")) as url:
        body = {"messages": [{"role": "user", "content": "x"}], "stream": True}
        response = httpx.post(url + "/chat/completions", json=body, timeout=30)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = response.text.split("\n\n")
    assert all(e.startswith("data: ") for e in events[:-1]) and events[-1] == ""
    assert events[-2] == "data: [DONE]"
    assert json.loads(events[0][6:])["choices"][0]["delta"]["role"] == "assistant"


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"messages": []}, None, "messages"),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}, None, "last message"),
        ({"messages": [{"role": "user", "content": "a"}], "n": 9}, "n", "at most 8"),
        ({"messages": [{"role": "user", "content": "a"}], "max_tokens": 5000}, "max_tokens", "at most 4096"),
        ({"messages": [{"role": "user", "content": "a"}], "temperature": 3}, None, "temperature"),
        ({"messages": [{"role": "user", "content": "a"}] * 300}, "messages", "at most 256"),
        ({"messages": [{"role": "robot", "content": "a"}]}, None, "role"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, None, "data URL"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, None, "text and image_url"),
    ],
)
def test_bad_requests_get_400_with_an_openai_error_body(body, param, words):
    with serve(StubEngine()) as url, pytest.raises(openai.BadRequestError) as err:
        OpenAI(base_url=url, api_key="x", max_retries=0).chat.completions.create(model="m", **body)
    error = err.value.body
    assert err.value.status_code == 400 and error["type"] == "invalid_request_error"
    assert words in error["message"] and error["param"] == param


def test_body_too_large_is_413_and_invalid_json_is_400():
    with serve(StubEngine(), max_body_bytes=2000) as url:
        with pytest.raises(openai.APIStatusError) as err:
            ask(url, messages=[{"role": "user", "content": "x" * 5000}])
        bad_json = httpx.post(url + "/chat/completions", content=b"{not json", timeout=30)
    assert err.value.status_code == 413 and "larger than 2000 bytes" in err.value.body["message"]
    assert bad_json.status_code == 400 and "error" in bad_json.json()


def test_api_key_is_required_when_set():
    with serve(StubEngine("ok"), api_key="s3cret") as url:
        with pytest.raises(openai.AuthenticationError) as err:
            ask(url, key="wrong")
        no_header = httpx.get(url + "/models", timeout=30)
        models = OpenAI(base_url=url, api_key="s3cret").models.list()
        reply = ask(url, key="s3cret")
    assert err.value.status_code == 401 and err.value.body["code"] == "invalid_api_key"
    assert no_header.status_code == 401 and no_header.json()["error"]["code"] == "invalid_api_key"
    assert [m.id for m in models.data] == ["tuneforge"] and reply.choices[0].message.content == "ok"


def test_client_disconnect_mid_stream_stops_generation():
    engine = StubEngine("z" * 30_000, delay=0.002)  # 10,000 pieces, 20 s if nobody stops it
    with serve(engine) as url:
        with ask(url, stream=True) as stream:
            for n, _ in enumerate(stream):
                if n == 3:
                    break
        start = time.monotonic()
        while True:
            reply = httpx.get(url.removesuffix("/v1") + "/health", timeout=30).json()
            if reply["pending"] == 0 or time.monotonic() - start > 10:
                break
            time.sleep(0.05)
        stopped_after = engine.produced
        time.sleep(0.3)
    assert reply["pending"] == 0 and stopped_after < 2000
    assert engine.produced == stopped_after  # nothing more was generated after the stop


def test_requests_beyond_the_queue_get_503_and_the_rest_complete():
    engine = StubEngine("slow reply", delay=0.05)
    results: list = []

    def one(url):
        try:
            results.append(ask(url).choices[0].message.content)
        except openai.APIStatusError as exc:
            results.append(exc.status_code)

    with serve(engine, max_pending=2) as url:
        threads = [threading.Thread(target=one, args=(url,)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results.count("slow reply") >= 2 and set(results) <= {"slow reply", 503} and 503 in results


def test_chat_server_refuses_score_and_score_needs_input():
    with serve(StubEngine()) as url:
        response = httpx.post(url + "/score", json={"input": ["a"]}, timeout=30)
    assert response.status_code == 400 and "reward model" in response.json()["error"]["message"]


def test_stop_filter_holds_back_partial_stop_strings():
    f = StopFilter(["END", "\n\n"])
    out = [f.feed(p) for p in ["Hel", "lo E", "N", "Dx", "more"]]
    assert out == ["Hel", "lo ", "", "", ""] and f.hit
    f = StopFilter(["END"])
    assert [f.feed(p) for p in ["a E", "Nb"]] + [f.flush()] == ["a ", "ENb", ""] and not f.hit


def test_split_tool_calls_keeps_the_text_before_the_call():
    text = 'Sure.\n<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>'
    assert split_tool_calls(text, "qwen") == ("Sure.", [("f", '{"x": 1}')])
    assert split_tool_calls("no call here", "qwen") is None


def test_vllm_and_sglang_are_refused_with_one_clear_error(tiny_model_dir, monkeypatch):
    import importlib.util

    from tuneforge.chat.engines import check_backend, get_engine
    from tuneforge.config import load_config
    from tuneforge.errors import UserError

    cfg = load_config(None, {"model_name_or_path": str(tiny_model_dir), "infer_backend": "vllm"})
    with pytest.raises(UserError) as err:
        get_engine(cfg)  # vllm is not installed here, and there is no GPU
    assert err.value.where == "infer_backend" and "huggingface" in err.value.fix
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(UserError, match="needs the sglang package, which is not installed"):
        check_backend("sglang")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: object())
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        check_backend("vllm", has_cuda=False)
    with pytest.raises(UserError, match="does not drive it yet"):
        check_backend("vllm", has_cuda=True)
    check_backend("huggingface")  # no error


def test_an_engine_failure_mid_stream_arrives_as_an_error_event_and_the_server_lives_on():
    class Failing(StubEngine):
        def stream(self, *args, **kwargs):
            pieces = super().stream(*args, **kwargs)
            yield next(pieces)
            raise RuntimeError("device fell over")

    engine = Failing("abcdefghi")
    with serve(engine) as url:
        with pytest.raises(openai.APIError, match="device fell over"):
            list(ask(url, stream=True))
        with pytest.raises(openai.InternalServerError):
            ask(url)
        health_url = url.removesuffix("/v1") + "/health"
        health = httpx.get(health_url, timeout=30).json()
        ended_peak = httpx.get(health_url, params={"reset_peak": "true"}, timeout=30).json()["peak_pending"]
        after_reset = httpx.get(health_url, timeout=30).json()
    # one request at a time: the peak is 1; a reset ends that peak and starts from what is pending now (nothing)
    assert health == {"status": "ok", "pending": 0, "peak_pending": 1}
    assert ended_peak == 1 and after_reset == {"status": "ok", "pending": 0, "peak_pending": 0}


def test_the_event_loop_answers_while_the_model_generates():
    engine = StubEngine("abc", delay=3.0)  # one piece that takes 3 s to "generate"
    with serve(engine) as url:
        worker = threading.Thread(target=ask, args=(url,))
        worker.start()
        health = url.removesuffix("/v1") + "/health"
        polls = []
        while worker.is_alive():
            start = time.monotonic()
            pending = httpx.get(health, timeout=30).json()["pending"]
            polls.append((time.monotonic() - start, pending))
            time.sleep(0.1)
        worker.join()
    busy = [seconds for seconds, pending in polls if pending == 1]
    assert len(busy) >= 5 and max(busy) < 1.0  # answered during the 3 s generation, not after it


def test_cli_refuses_a_busy_port_in_one_line_before_loading_the_model(tiny_model_dir, capsys):
    import socket

    from tuneforge.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["api", f"model_name_or_path={tiny_model_dir}", "--port", str(port)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("tuneforge: error: --host/--port: cannot listen on 127.0.0.1:")
    assert len(err.splitlines()) == 1
