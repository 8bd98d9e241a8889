"""The API with pictures, through the official openai client: a base64 data-URL image on the tiny Qwen2-VL gets the
engine's own answer (streamed and not; the picture counts in usage); a web address, a server file path, a broken
picture or a picture sent to a text-only model is a 400 with one line."""

from __future__ import annotations

import base64
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from tuneforge.api.app import create_app
from tuneforge.api.server import BackgroundServer
from tuneforge.chat.engine import HuggingFaceEngine
from tuneforge.config import load_config

SHAPES = Path(__file__).resolve().parents[2] / "data" / "shapes_demo"
RED, BLUE = SHAPES / "eval_000.png", SHAPES / "eval_001.png"


def data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def ask(url: str, question: str = "What shape is this?") -> list[dict]:
    return [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": question}],
        }
    ]


def engine_for(model_dir, template: str) -> HuggingFaceEngine:
    cfg = {"model_name_or_path": str(model_dir), "template": template, "do_sample": False, "max_new_tokens": 8}
    return HuggingFaceEngine(load_config(None, cfg))


@pytest.fixture(scope="module")
def vlm(tiny_vlm_dir):
    return engine_for(tiny_vlm_dir("qwen2_vl"), "qwen2_vl")


@pytest.fixture(scope="module")
def client(vlm):
    with BackgroundServer(create_app(vlm)) as url:
        yield OpenAI(base_url=url, api_key="none", max_retries=0)


def test_a_base64_picture_gets_the_engines_answer(vlm, client):
    replies = {}
    for path in (RED, BLUE):
        messages = ask(data_url(path))
        reply = client.chat.completions.create(model="vl", messages=messages)
        chunks = client.chat.completions.create(model="vl", messages=messages, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
        expected = vlm.chat(ask(str(path)))
        assert reply.choices[0].message.content == streamed == expected and expected
        assert reply.usage.prompt_tokens == len(vlm.prompt_ids(messages))  # the picture's 4 image tokens included
        replies[path] = expected
    assert replies[RED] != replies[BLUE]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://example.com/cat.png", "must be a base64 data URL"),
        (str(RED), "must be a base64 data URL"),  # the server opens no file a client names
        ("data:image/png;base64,bm90IGEgcGljdHVyZQ==", "cannot read image a base64 data URL"),
    ],
)
def test_bad_pictures_are_a_400(client, url, words):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="vl", messages=ask(url))
    assert words in err.value.body["message"] and "\n" not in err.value.body["message"]


def test_a_picture_for_a_text_only_model_is_a_400(tiny_model_dir):
    with BackgroundServer(create_app(engine_for(tiny_model_dir, "qwen"))) as url:
        client = OpenAI(base_url=url, api_key="none", max_retries=0)
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model="m", messages=ask(data_url(RED)))
        with pytest.raises(openai.BadRequestError) as streamed:  # the same 400 before a stream starts
            client.chat.completions.create(model="m", messages=ask(data_url(RED)), stream=True)
    for error in (err.value.body, streamed.value.body):
        assert error["message"] == (
            "messages: the messages hold 1 image(s), and this model reads text only — send text only, or chat with a "
            "vision-language model (e.g. Qwen2-VL) and its template"
        )
        assert error["param"] == "messages"
