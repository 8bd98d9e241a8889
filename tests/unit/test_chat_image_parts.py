"""OpenAI content parts in chat messages → a Conversation: `<image>` placeholders where the pictures stand, the
pictures' paths / data URLs in `images`, in order across the turns; every bad part is one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneforge.api.protocol import ChatMessage
from tuneforge.chat.engine import to_conversation
from tuneforge.chat.vision_inputs import image_part
from tuneforge.errors import UserError

SHAPES = Path(__file__).resolve().parents[2] / "data" / "shapes_demo"
RED = str(SHAPES / "eval_000.png")
BLUE = str(SHAPES / "eval_001.png")
PIXEL = "data:image/png;base64,iVBORw0KGgo="  # checked for its form only here; pixels are read when encoding


def picture(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def test_parts_become_placeholders_and_image_refs_in_turn_order():
    messages = [
        {"role": "system", "content": [text("Be brief.")]},
        {"role": "user", "content": [picture(RED), text("What is it? And "), picture(PIXEL), text("?")]},
        {"role": "assistant", "content": "A square."},
        {"role": "user", "content": [text("Now this: "), picture(BLUE)]},
    ]
    conv = to_conversation(messages)
    assert [m.content for m in conv.messages] == [
        "<image>What is it? And <image>?",
        "A square.",
        "Now this: <image>",
    ]
    assert conv.system == "Be brief."
    assert conv.images == [RED, PIXEL, BLUE]


def test_string_content_has_no_images():
    conv = to_conversation([{"role": "user", "content": "hi"}])
    assert conv.messages[0].content == "hi" and conv.images == []


@pytest.mark.parametrize(
    ("part", "words"),
    [
        (picture("https://example.com/cat.png"), "message 0: image https://example.com/cat.png is a web address"),
        (picture(str(SHAPES / "nope.png")), "message 0: image file not found: "),
        (picture("data:text/plain;base64,aGk="), "image data URL must start data:image/"),
        ({"type": "image_url", "image_url": {}}, 'image_url part needs {"image_url": {"url": ...}}'),
        ({"type": "video_url", "video_url": {"url": RED}}, "video parts are not supported in chat"),
        ({"type": "input_audio"}, "unknown content part type 'input_audio'"),
    ],
)
def test_bad_parts_are_one_line(part, words):
    with pytest.raises(UserError) as err:
        to_conversation([{"role": "user", "content": [part, text("What?")]}])
    assert words in err.value.one_line() and "\n" not in err.value.one_line()


def test_a_typed_placeholder_beside_a_picture_is_a_count_mismatch():
    with pytest.raises(UserError, match=r"1 image\(s\) but 2 <image> placeholder"):
        to_conversation([{"role": "user", "content": [picture(RED), text("what is <image>?")]}])


def test_images_in_a_system_message_are_refused():
    with pytest.raises(UserError, match="message 0: a system message holds images"):
        to_conversation([{"role": "system", "content": [picture(RED)]}, {"role": "user", "content": "hi"}])


def test_image_part_checks_the_file():
    assert image_part(RED) == picture(RED)
    with pytest.raises(UserError, match=r"^--image: image file not found: missing.png — check the path$"):
        image_part("missing.png")


def test_api_messages_keep_text_and_data_url_parts():
    parts = [picture(PIXEL), text("What?")]
    assert ChatMessage(role="user", content=parts).to_engine() == {"role": "user", "content": parts}
    for url in (RED, "https://example.com/a.png"):  # the server opens no file path and downloads nothing
        with pytest.raises(ValueError, match="must be a base64 data URL"):
            ChatMessage(role="user", content=[picture(url)])
