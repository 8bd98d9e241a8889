"""The API end to end on the tiny model through the official openai client: answers equal the engine's own,
streamed and not; stop strings, n, usage, length limits; 32 concurrent streams; a disconnect stops generation;
a LoRA taught one tool call answers with OpenAI tool_calls; a reward model scores through /v1/score; the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import openai
import pytest
from openai import OpenAI

from tuneforge.api.app import ServerSettings, create_app
from tuneforge.api.server import BackgroundServer, free_port
from tuneforge.chat.engine import GenerationInfo, HuggingFaceEngine
from tuneforge.chat.engines import get_engine
from tuneforge.config import load_config
from tuneforge.train.run import run_training

HI = [{"role": "user", "content": "Hello, who are you?"}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    cfg = {"model_name_or_path": str(tiny_model_dir), "template": "qwen", "do_sample": False, "max_new_tokens": 16}
    return HuggingFaceEngine(load_config(None, cfg))


@pytest.fixture(scope="module")
def server(engine):
    with BackgroundServer(create_app(engine, ServerSettings(api_key="k"))) as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    return OpenAI(base_url=server, api_key="k", max_retries=0)


def test_answers_equal_the_engine_streamed_and_not(engine, client):
    reference = engine.chat(HI)
    reply = client.chat.completions.create(model="tiny", messages=HI)
    chunks = list(client.chat.completions.create(model="tiny", messages=HI, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert reply.choices[0].message.content == reference == streamed and len(reference) > 5
    assert reply.choices[0].finish_reason == chunks[-1].choices[0].finish_reason == "length"
    assert reply.usage.prompt_tokens == len(engine.prompt_ids(HI))
    assert reply.usage.completion_tokens == 16 and reply.usage.total_tokens == reply.usage.prompt_tokens + 16


def test_stop_string_cuts_the_reply_and_n_gives_n_choices(engine, client):
    reference = engine.chat(HI)
    stop = reference[len(reference) // 2 :][:2]
    expected = reference[: reference.index(stop)]
    reply = client.chat.completions.create(model="tiny", messages=HI, stop=[stop], n=2)
    streamed = list(client.chat.completions.create(model="tiny", messages=HI, stop=stop, stream=True))
    assert [c.message.content for c in reply.choices] == [expected, expected]
    assert [c.finish_reason for c in reply.choices] == ["stop", "stop"]
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == expected
    assert streamed[-1].choices[0].finish_reason == "stop"


def test_max_tokens_beyond_the_context_is_a_400(client, engine):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny", messages=HI, max_tokens=engine.context_length)
    assert "context" in err.value.body["message"] and err.value.body["param"] == "max_tokens"
    with pytest.raises(openai.BadRequestError) as err:  # the same check before a stream starts
        client.chat.completions.create(model="tiny", messages=HI, max_tokens=engine.context_length, stream=True)
    assert "context" in err.value.body["message"]


def test_tools_reach_the_prompt_in_the_template_format(engine, client):
    tools = [{"type": "function", "function": WEATHER}]
    reply = client.chat.completions.create(model="tiny", messages=HI, tools=tools, max_tokens=4)
    with_tools = engine.prompt_ids(HI, tools=json.dumps([WEATHER]))
    assert reply.usage.prompt_tokens == len(with_tools) > len(engine.prompt_ids(HI)) + 50
    assert "<tools>" in engine.tokenizer.decode(with_tools)  # qwen's tool format


def test_32_concurrent_streams_all_complete_with_their_own_answers(engine, client):
    prompts = [[{"role": "user", "content": f"Question number {i}?"}] for i in range(32)]
    expected = [engine.chat(p, max_new_tokens=8) for p in prompts]

    def one(messages):
        stream = client.chat.completions.create(model="tiny", messages=messages, max_tokens=8, stream=True)
        chunks = list(stream)
        return "".join(c.choices[0].delta.content or "" for c in chunks), chunks[-1].choices[0].finish_reason

    start = time.monotonic()
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, prompts))
    elapsed = time.monotonic() - start
    assert results == [(e, "length") for e in expected]
    print(f"32 concurrent streams of 8 tokens: {elapsed:.2f} s")


def test_client_disconnect_stops_generation(engine, server, client):
    seen: list[GenerationInfo] = []
    original = engine.stream_parts

    def spy(*args, info=None, **kwargs):
        seen.append(info)
        return original(*args, info=info, **kwargs)

    engine.stream_parts = spy
    try:
        with client.chat.completions.create(model="tiny", messages=HI, max_tokens=3000, stream=True) as stream:
            for n, _ in enumerate(stream):
                if n == 3:
                    break
        health = server.removesuffix("/v1") + "/health"
        deadline = time.monotonic() + 20
        while httpx.get(health, timeout=30).json()["pending"] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        del engine.stream_parts
    assert httpx.get(health, timeout=30).json()["pending"] == 0
    assert len(seen) == 1 and 3 <= seen[0].completion_tokens < 1000  # 3000 tokens take ~7 s here


def test_a_lora_taught_a_tool_call_answers_with_tool_calls(train_overrides, data_dir, tiny_model_dir):
    question = "What is the weather in Paris?"
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    rows = [
        {
            "conversations": [
                {"from": "human", "value": question},
                {"from": "function_call", "value": json.dumps(call)},
            ],
            "tools": json.dumps([WEATHER]),
        }
    ]
    (data_dir / "tools.json").write_text(json.dumps(rows), encoding="utf-8")
    info = json.loads((data_dir / "dataset_info.json").read_text())
    columns = {"messages": "conversations", "tools": "tools"}
    info["tools"] = {"file_name": "tools.json", "formatting": "sharegpt", "columns": columns}
    (data_dir / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    out = run_training(load_config(None, train_overrides("lora", dataset="tools", cutoff_len=1024, max_steps=40)))

    cfg = {"model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": str(out), "do_sample": False}
    engine = get_engine(load_config(None, cfg))
    tools = [{"type": "function", "function": WEATHER}]
    messages = [{"role": "user", "content": question}]
    with BackgroundServer(create_app(engine)) as url:
        client = OpenAI(base_url=url, api_key="none", max_retries=0)
        reply = client.chat.completions.create(model="m", messages=messages, tools=tools, max_tokens=64)
        chunks = list(client.chat.completions.create(model="m", messages=messages, tools=tools, stream=True))
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message.content
    assert [(c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    streamed = [c for chunk in chunks for ch in chunk.choices for c in ch.delta.tool_calls or []]
    assert [(c.function.name, json.loads(c.function.arguments)) for c in streamed] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.fixture(scope="module")
def reward_dir(tiny_model_dir, tmp_path_factory):
    """What a stage-rm run saves: the tiny model's body with a 1-label sequence-classification head."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(tiny_model_dir, num_labels=1)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    out = tmp_path_factory.mktemp("rm")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


def test_reward_model_scores_texts_and_conversations(reward_dir):
    import torch
    from transformers import AutoModelForSequenceClassification

    from tuneforge.chat.engine import to_conversation

    engine = get_engine(load_config(None, {"model_name_or_path": str(reward_dir), "stage": "rm", "template": "qwen"}))
    convo = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}]
    with BackgroundServer(create_app(engine)) as url:
        texts = httpx.post(url + "/score", json={"input": ["good answer", "bad answer"]}, timeout=60).json()
        one = httpx.post(url + "/score", json={"messages": convo}, timeout=60).json()
        refused = httpx.post(url + "/chat/completions", json={"messages": HI}, timeout=60)
        unfinished = httpx.post(url + "/score", json={"messages": HI}, timeout=60)

    model = AutoModelForSequenceClassification.from_pretrained(reward_dir).eval()

    def direct(ids):
        with torch.inference_mode():
            return model(input_ids=torch.tensor([ids])).logits.item()

    expected = [direct(engine.tokenizer.encode(t, add_special_tokens=False)) for t in ("good answer", "bad answer")]
    pairs = engine.template.encode_multiturn(engine.tokenizer, to_conversation(convo, reply=True))
    conv_ids = [i for prompt, response in pairs for i in (*prompt, *response)]
    assert [d["score"] for d in texts["data"]] == pytest.approx(expected, abs=1e-5)
    assert expected[0] != pytest.approx(expected[1])
    assert one["data"][0]["score"] == pytest.approx(direct(conv_ids), abs=1e-5)
    assert one["usage"]["prompt_tokens"] == len(conv_ids)
    assert refused.status_code == 400 and "/v1/score" in refused.json()["error"]["message"]
    assert unfinished.status_code == 400 and "assistant" in unfinished.json()["error"]["message"]


@pytest.mark.slow  # a fresh process imports torch and loads the model
def test_cli_serves_with_the_key_from_the_environment(tiny_model_dir, tmp_path):
    port = free_port()
    env = {**os.environ, "TUNEFORGE_API_KEY": "from-env", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "tuneforge", "api", f"model_name_or_path={tiny_model_dir}", "template=qwen"]
    log = open(tmp_path / "api.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([*cmd, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300  # a fresh process on 2 busy shared cores can take a minute
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
            assert proc.poll() is None, (tmp_path / "api.log").read_text()
        client = OpenAI(base_url=base + "/v1", api_key="from-env", max_retries=0)
        models = client.models.list()
        reply = client.chat.completions.create(model=models.data[0].id, messages=HI, max_tokens=4)
        denied = httpx.get(base + "/v1/models", timeout=5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    assert [m.id for m in models.data] == [tiny_model_dir.name]
    assert reply.usage.completion_tokens == 4 and denied.status_code == 401


def test_a_trained_reward_model_run_is_served_and_ranks_its_pairs(train_overrides, data_dir, tiny_model_dir):
    good, bad = "Sure, happy to help: good answer.", "no no no bad"
    questions = ["Name a fruit.", "Say hello.", "What colour is the sky?", "Count to three."]
    rows = [
        {
            "conversations": [{"from": "human", "value": q}],
            "chosen": {"from": "gpt", "value": good},
            "rejected": {"from": "gpt", "value": bad},
        }
        for q in questions
    ]
    (data_dir / "pairs.json").write_text(json.dumps(rows), encoding="utf-8")
    info = json.loads((data_dir / "dataset_info.json").read_text())
    columns = {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}
    info["pairs"] = {"file_name": "pairs.json", "formatting": "sharegpt", "ranking": True, "columns": columns}
    (data_dir / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    out = run_training(load_config(None, train_overrides("lora", stage="rm", dataset="pairs", max_steps=12)))

    def conversation(answer):
        return [{"role": "user", "content": questions[0]}, {"role": "assistant", "content": answer}]

    body = {"input": [conversation(good), conversation(bad)]}
    scores = []
    for cfg in (
        {"model_name_or_path": str(out), "stage": "rm"},  # the run folder (a SEQ_CLS adapter) on its own
        {"model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": str(out), "stage": "rm"},
    ):
        with BackgroundServer(create_app(get_engine(load_config(None, cfg)))) as url:
            reply = httpx.post(url + "/score", json=body, timeout=60)
        assert reply.status_code == 200, reply.text
        scores.append([d["score"] for d in reply.json()["data"]])
    assert scores[0][0] > scores[0][1]  # chosen above rejected, as trained
    assert scores[1] == pytest.approx(scores[0], abs=1e-5)  # both ways of naming the run load the same model
