"""The Web UI chat shows a reasoning model's thinking folded above its answer (open while it thinks), the "Enable
thinking" checkbox reaches the engine, and the next turn's history holds the answer without the fold."""

from __future__ import annotations

import pytest

from tuneforge.chat.reasoning import ReasoningSplitter, split_pieces
from tuneforge.webui import i18n
from tuneforge.webui.chat_messages import answer_of
from tuneforge.webui.tabs.chat import render_reply

REPLY = "<think>\nx < y, so\n</think>\n\nY is bigger."


class ThinkingStub:
    def __init__(self):
        self.calls = []

    def stream_parts(self, messages, system=None, tools=None, *, enable_thinking=None, **gen):
        self.calls.append((messages, enable_thinking))
        reply = REPLY if enable_thinking is not False else "Y is bigger."
        yield from split_pieces([reply[i : i + 5] for i in range(0, len(reply), 5)], ReasoningSplitter())


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from tuneforge.webui.app import create_app

    demo, ui = create_app(tmp_path_factory.mktemp("saves"), chat_only=True)
    ui.scheduler.stop()
    return demo, ui


def _respond(page):
    demo, ui = page
    comp = ui.elems["submit_btn"]
    for fn in demo.fns.values():
        if (comp._id, "click") in [tuple(t) for t in fn.targets]:
            return fn.fn
    raise AssertionError("nothing wired to submit_btn")


def test_the_thinking_is_folded_above_the_answer_and_history_keeps_the_answer(page):
    demo, ui = page
    ui.engine = engine = ThinkingStub()
    respond = _respond(page)
    bubbles, history = [], None
    for history, *_ in respond("en", "Which is bigger?", [], "", 64, 1.0, 1.0, False, True):
        bubbles.append(history[-1]["content"])  # the bubble as each update showed it
    thinking, thought = i18n.label("chat_thinking_now", "en"), i18n.label("chat_thought", "en")
    assert bubbles[0].startswith(f"<details open><summary class='tf-thinking-summary'>{thinking}</summary>")
    assert bubbles[-1] == (
        f"<details><summary class='tf-thinking-summary'>{thought}</summary>\n\n"
        "<div class='tf-thinking'>\nx &lt; y, so\n</div>\n</details>\n\nY is bigger."
    )
    assert engine.calls[0][1] is True
    list(respond("en", "Sure?", history, "", 64, 1.0, 1.0, False, False))  # thinking off for this message
    messages, enable_thinking = engine.calls[1]
    assert enable_thinking is False
    assert messages == [
        {"role": "user", "content": "Which is bigger?"},
        {"role": "assistant", "content": "Y is bigger."},
        {"role": "user", "content": "Sure?"},
    ]
    ui.engine = None


def test_render_reply_plain_answers_and_other_languages():
    assert render_reply(None, "Just text.", "en") == "Just text." == answer_of("Just text.")
    zh = render_reply("想一想", "", "zh")
    assert zh.startswith("<details open>") and i18n.label("chat_thinking_now", "zh") in zh
    assert answer_of(zh) == ""
    assert i18n.label("chat_thought", "ja") in render_reply("考え", "答え", "ja") and i18n.label("chat_thinking", "ko")
