"""`tuneforge chat --image PATH --query ...` answers about the picture as the engine does; a missing picture is one
line and exit 2 before any model loads; in the chat, '/image PATH' attaches a picture to the next message, which keeps
it in the history; a bad path or a picture for a text-only model is one line and the chat goes on."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tuneforge.chat.engine import HuggingFaceEngine
from tuneforge.chat.repl import run_chat
from tuneforge.cli import main
from tuneforge.config import load_config

SHAPES = Path(__file__).resolve().parents[2] / "data" / "shapes_demo"
RED, BLUE = str(SHAPES / "eval_000.png"), str(SHAPES / "eval_001.png")
SETTINGS = ["template=qwen2_vl", "do_sample=false", "max_new_tokens=8"]


def picture(path: str) -> dict:
    return {"type": "image_url", "image_url": {"url": path}}


@pytest.fixture(scope="module")
def engine(tiny_vlm_dir):
    overrides = dict(s.split("=") for s in SETTINGS)
    return HuggingFaceEngine(load_config(None, {"model_name_or_path": str(tiny_vlm_dir("qwen2_vl")), **overrides}))


def test_cli_answers_about_the_picture(engine, tiny_vlm_dir, capsys):
    model = f"model_name_or_path={tiny_vlm_dir('qwen2_vl')}"
    answers = {}
    for path in (RED, BLUE):
        assert main(["chat", model, *SETTINGS, "--image", path, "--query", "What is it?", "--query", "Hi"]) == 0
        answers[path] = capsys.readouterr().out
    expected = engine.chat([{"role": "user", "content": [picture(RED), {"type": "text", "text": "What is it?"}]}])
    without = engine.chat([{"role": "user", "content": "Hi"}])  # the picture goes with the first query only
    assert answers[RED] == f"User: What is it?\nAssistant: {expected}\nUser: Hi\nAssistant: {without}\n"
    assert answers[BLUE] != answers[RED] and expected


def test_cli_missing_picture_is_one_line_exit_2(tiny_vlm_dir, capsys):
    model = f"model_name_or_path={tiny_vlm_dir('qwen2_vl')}"
    assert main(["chat", model, *SETTINGS, "--image", "nowhere/cat.png", "--query", "What?"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "tuneforge: error: --image: image file not found: nowhere/cat.png — check the path\n"
    assert captured.out == ""


def test_image_command_attaches_a_picture_to_the_next_message(engine):
    seen = []
    original = engine.stream_parts

    def spy(messages, *args, **kwargs):
        seen.append([m["content"] for m in messages if m["role"] == "user"])
        return original(messages, *args, **kwargs)

    engine.stream_parts = spy
    try:
        out = io.StringIO()
        lines = f"/image {RED}\nWhat is it?\nAnd now?\n/image nowhere.png\n/image\nclear\nexit\n"
        run_chat(engine, stream_in=io.StringIO(lines), out=out)
    finally:
        del engine.stream_parts
    first = [picture(RED), {"type": "text", "text": "What is it?"}]
    assert seen == [[first], [first, "And now?"]]  # the picture stays in the history
    text = out.getvalue()
    assert f"Image attached to your next message: {RED}\n" in text and text.count("Assistant: ") == 2
    assert "/image: image file not found: nowhere.png — check the path\n" in text
    assert "/image: no picture given — type '/image PATH'\n" in text


def test_image_for_a_text_only_model_is_one_line_and_the_chat_goes_on(tiny_model_dir):
    text_engine = HuggingFaceEngine(
        load_config(None, {"model_name_or_path": str(tiny_model_dir), "template": "qwen", "max_new_tokens": 4})
    )
    out = io.StringIO()
    run_chat(text_engine, stream_in=io.StringIO(f"/image {RED}\nWhat is it?\nhello\n"), out=out, images=None)
    text = out.getvalue()
    assert "messages: the messages hold 1 image(s), and this model reads text only" in text
    assert text.count("Assistant: ") == 1  # "hello" is answered, without the refused picture in its history
