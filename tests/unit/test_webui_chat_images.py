"""The Web UI chat with a picture: the upload goes with the next message as an OpenAI image_url part (the file's path,
before the text), the history shows it as a thumbnail and keeps it for later turns (also after gradio's round trip),
the upload box empties once it is sent, and a text-only model's engine refuses it in one line in the status box."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneforge.errors import UserError
from tuneforge.webui.chat_messages import engine_messages, user_turn
from tuneforge.webui.jobs_view import error_text

SHAPE = str(Path(__file__).resolve().parents[2] / "data" / "shapes_demo" / "train_051.png")
PICTURE = {"type": "image_url", "image_url": {"url": SHAPE}}


class EngineStub:
    def __init__(self, pieces=("a ", "triangle")):
        self.calls, self.pieces = [], pieces

    def stream_parts(self, messages, system=None, tools=None, *, enable_thinking=None, **gen):
        self.calls.append(messages)
        yield from [("content", piece) for piece in self.pieces]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from tuneforge.webui.app import create_app

    demo, ui = create_app(tmp_path_factory.mktemp("saves"), chat_only=True)
    ui.scheduler.stop()
    return demo, ui


def respond_of(page):
    demo, ui = page
    target = (ui.elems["submit_btn"]._id, "click")
    return next(fn.fn for fn in demo.fns.values() if target in [tuple(t) for t in fn.targets])


def send(respond, query, history, image):
    return list(respond("en", query, history, "", 64, 1.0, 1.0, False, True, image))


def test_user_turn_puts_the_picture_before_the_text():
    assert user_turn("Hi", None) == ({"role": "user", "content": "Hi"}, {"role": "user", "content": "Hi"})
    assert user_turn("What shape?", SHAPE) == (
        {"role": "user", "content": [PICTURE, {"type": "text", "text": "What shape?"}]},
        {"role": "user", "content": [{"path": SHAPE}, "What shape?"]},
    )
    assert user_turn("", SHAPE) == (
        {"role": "user", "content": [PICTURE]},
        {"role": "user", "content": [{"path": SHAPE}]},
    )


def test_history_keeps_pictures_as_written_and_after_gradios_round_trip():
    import gradio as gr

    history = [
        user_turn("What shape?", SHAPE)[1],
        {"role": "assistant", "content": "<details><summary>t</summary>\n\nhm\n</details>\n\nA triangle."},
        {"role": "user", "content": "And its colour?"},
        {"role": "assistant", "content": "Red."},
    ]
    expected = [
        {"role": "user", "content": [PICTURE, {"type": "text", "text": "What shape?"}]},
        {"role": "assistant", "content": "A triangle."},
        {"role": "user", "content": "And its colour?"},
        {"role": "assistant", "content": "Red."},
    ]
    assert engine_messages(history) == expected
    chatbot = gr.Chatbot()
    back = chatbot.preprocess(chatbot.postprocess(history))  # what the browser's history comes back as
    assert back[0]["content"][0]["type"] == "file" and back[0]["content"][0]["file"]["path"] == SHAPE
    assert engine_messages(back) == expected


def test_the_picture_goes_with_the_next_message_and_stays_in_the_history(page):
    demo, ui = page
    ui.engine = engine = EngineStub()
    respond = respond_of(page)
    updates = send(respond, "What shape is this?", [], SHAPE)
    history, query, _, image = updates[-1]
    assert engine.calls[0] == [{"role": "user", "content": [PICTURE, {"type": "text", "text": "What shape is this?"}]}]
    assert history == [
        {"role": "user", "content": [{"path": SHAPE}, "What shape is this?"]},
        {"role": "assistant", "content": "a triangle"},
    ]
    assert query == "" and all(u[3] is None for u in updates)  # the upload box empties with the query
    send(respond, "Sure?", history, None)
    assert engine.calls[1] == [
        {"role": "user", "content": [PICTURE, {"type": "text", "text": "What shape is this?"}]},
        {"role": "assistant", "content": "a triangle"},
        {"role": "user", "content": "Sure?"},
    ]
    ui.engine = None


def test_an_empty_reply_still_shows_the_question_and_takes_the_picture(page):
    demo, ui = page
    ui.engine = EngineStub(pieces=())
    [(history, query, _, image)] = send(respond_of(page), "What shape?", [], SHAPE)
    assert history == [user_turn("What shape?", SHAPE)[1], {"role": "assistant", "content": ""}]
    assert (query, image) == ("", None)
    ui.engine = None


def test_a_text_model_answers_the_picture_with_the_engines_line_in_the_status_box(page, tiny_model_dir):
    from tuneforge.chat.engine import HuggingFaceEngine
    from tuneforge.config import load_config

    demo, ui = page
    ui.engine = engine = HuggingFaceEngine(load_config(None, {"model_name_or_path": str(tiny_model_dir)}))
    before = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    [(history, query, status, image)] = send(respond_of(page), "What shape?", before, SHAPE)
    with pytest.raises(UserError) as refused:
        engine.chat([*before, user_turn("What shape?", SHAPE)[0]])
    assert status == error_text(refused.value) and "reads text only" in status
    assert (history, query) == (before, "What shape?")  # nothing sent: the question stays to edit
    assert image == {"__type__": "update"}  # and the picture stays in its box, to send to another model
    ui.engine = None
