"""Batched serving on the tiny model: concurrent requests decode as rows of one batch (chat/batching.py) and answer
exactly what the engine answers one request at a time (greedy, prompts of different lengths: left padding, rows
joining mid-flight); stop strings, max_tokens, finish_reason and usage per row; n > 1 choices are rows of one
batch; a client that leaves frees its row; infer_batch_size caps the batch, and 1 restores one-at-a-time."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest
from openai import OpenAI

from tuneforge.api.app import ServerSettings, create_app
from tuneforge.api.server import BackgroundServer
from tuneforge.chat.engine import GenerationInfo, HuggingFaceEngine
from tuneforge.config import load_config

PROMPTS = [[{"role": "user", "content": "tell me " * k + f"about number {k}."}] for k in (1, 9, 30, 4, 60, 2)]


def _engine(model_dir, **keys):
    cfg = {"model_name_or_path": str(model_dir), "template": "qwen", "do_sample": False, "max_new_tokens": 12}
    return HuggingFaceEngine(load_config(None, {**cfg, **keys}))


@pytest.fixture(scope="module")
def solo(tiny_model_dir):
    return _engine(tiny_model_dir, infer_batch_size=1)


@pytest.fixture(scope="module")
def batched(tiny_model_dir):
    return _engine(tiny_model_dir)


@pytest.fixture(scope="module")
def url(batched):
    with BackgroundServer(create_app(batched, ServerSettings())) as url:
        yield url


def _reference(engine, messages, **gen):
    info = GenerationInfo()
    return engine.chat(messages, info=info, **gen), info


def test_concurrent_requests_share_a_batch_and_equal_the_one_at_a_time_answers(solo, batched, url):
    client = OpenAI(base_url=url, api_key="none", max_retries=0)
    expected = [_reference(solo, p) for p in PROMPTS]
    batched.batcher.widest = 0

    def ask(i):
        time.sleep(0.03 * (i % 3))  # some arrive while the first rows decode: they join mid-flight
        return client.chat.completions.create(model="m", messages=PROMPTS[i])

    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        replies = list(pool.map(ask, range(len(PROMPTS))))
    assert batched.batcher.widest >= 3  # they really decoded together
    for (text, info), reply in zip(expected, replies, strict=True):
        assert len(text) > 5 and reply.choices[0].message.content == text
        assert reply.choices[0].finish_reason == info.finish_reason == "length"
        assert reply.usage.prompt_tokens == info.prompt_tokens and reply.usage.completion_tokens == 12
    assert len({len(solo.prompt_ids(p)) for p in PROMPTS}) == len(PROMPTS)  # every row padded differently


def test_each_row_keeps_its_own_stop_max_tokens_and_sampling(solo, batched):
    stop_at = _reference(solo, PROMPTS[1])[0][3:6]
    cases = [
        (PROMPTS[0], {}),
        (PROMPTS[1], {"stop": [stop_at]}),
        (PROMPTS[2], {"max_new_tokens": 3}),
        (PROMPTS[3], {"do_sample": True, "top_k": 1}),  # sampling from one token: the greedy answer
        (PROMPTS[4], {"do_sample": True, "temperature": 1.5, "top_p": 0.9}),
    ]
    expected = [_reference(solo, p, **gen) for p, gen in cases[:4]]
    results: list = [None] * len(cases)
    barrier = threading.Barrier(len(cases))

    def run(i):
        barrier.wait()
        results[i] = _reference(batched, cases[i][0], **cases[i][1])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(cases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for (text, info), (got, got_info) in zip(expected, results, strict=False):
        assert got == text and got_info.finish_reason == info.finish_reason
        assert got_info.prompt_tokens == info.prompt_tokens
    # tokens written after a stop string depend on when the reader saw it, in both paths: the others are exact
    assert [r[1].completion_tokens for r in results[:4:2]] == [i.completion_tokens for _, i in expected[::2]]
    assert results[1][1].finish_reason == "stop" and stop_at not in results[1][0]
    assert results[2][1].completion_tokens == 3 and results[2][1].finish_reason == "length"
    assert results[4][1].completion_tokens == 12  # the hot sampled row ran beside them and finished


def test_n_choices_are_rows_of_one_batch(solo, batched, url):
    client = OpenAI(base_url=url, api_key="none", max_retries=0)
    batched.batcher.widest = 0
    reply = client.chat.completions.create(model="m", messages=PROMPTS[0], n=4)
    assert batched.batcher.widest == 4
    assert [c.message.content for c in reply.choices] == [_reference(solo, PROMPTS[0])[0]] * 4
    assert [c.index for c in reply.choices] == [0, 1, 2, 3] and reply.usage.completion_tokens == 4 * 12
    sampled = client.chat.completions.create(model="m", messages=PROMPTS[0], n=3, temperature=1.5, stream=True)
    chunks = list(sampled)
    finished = sorted(c.choices[0].index for c in chunks if c.choices and c.choices[0].finish_reason)
    assert finished == [0, 1, 2]


def test_a_client_that_leaves_frees_its_row(batched, url):
    room = batched.context_length - len(batched.prompt_ids(PROMPTS[0]))
    body = {"model": "m", "messages": PROMPTS[0], "max_tokens": room, "stream": True}
    with httpx.Client(timeout=60) as client, client.stream("POST", url + "/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                deadline = time.monotonic() + 5  # the first token comes from the prefill, before the row counts
                while batched.batcher.active != 1 and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert batched.batcher.active == 1  # decoding, far from its max_tokens
                break  # one piece of content, then hang up
    deadline = time.monotonic() + 10
    while batched.batcher.active and time.monotonic() < deadline:
        time.sleep(0.02)
    assert batched.batcher.active == 0
    assert httpx.get(url.removesuffix("/v1") + "/health").json()["pending"] == 0


def test_infer_batch_size_caps_the_batch_and_1_runs_one_at_a_time(tiny_model_dir, solo):
    capped = _engine(tiny_model_dir, infer_batch_size=2)
    with ThreadPoolExecutor(5) as pool:
        texts = list(pool.map(lambda p: capped.chat(p), PROMPTS[:5]))
    assert capped.batcher.widest == 2
    assert texts == [_reference(solo, p)[0] for p in PROMPTS[:5]]
    assert solo.batcher is None and create_app(solo).state.worker.threads == 1
    assert create_app(capped).state.worker.threads == 2


def test_an_engine_let_go_ends_its_scheduler_and_frees_the_model(tiny_model_dir):
    import gc
    import weakref

    engine = _engine(tiny_model_dir, infer_batch_size=2)
    thread, model = engine.batcher._thread, weakref.ref(engine.model)
    assert engine.chat(PROMPTS[0]) and thread.is_alive()
    del engine
    gc.collect()
    thread.join(timeout=10)
    assert not thread.is_alive() and model() is None
