"""A vision-language model in the Web UI, in a real browser, on the tiny Qwen2-VL (tests/conftest.py: tiny_vlm_dir):
the Train tab's data preview of our shapes demo shows each row's picture as a thumbnail beside its tokens (the image
tokens folded to <|image_pad|>×N), and the Chat tab sends an uploaded picture with the question, shows it in the
history and streams the model's answer: the one the chat engine gives for that picture and question."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from test_webui import choose, fill, models_flag, open_page, shoot, switch_tab, wait_until

pytestmark = pytest.mark.browser
DEMO = Path(__file__).resolve().parents[2] / "data"
QUESTION, FOLLOW_UP = "What shape is this?", "And its colour?"
MAX_NEW_TOKENS = 8

# The pictures of an element: how many, and whether each is decoded (an <img> the page blocked has no pixels).
PICTURES = """root => [...root.querySelectorAll('img')].map(img => ({
  src: img.getAttribute('src').slice(0, 22), width: img.naturalWidth, alt: img.getAttribute('alt')}))"""


@pytest.fixture
def shapes_workdir(workdir):
    """The workdir's data folder with the first rows of data/shapes_demo.json and their pictures."""
    rows = json.loads((DEMO / "shapes_demo.json").read_text(encoding="utf-8"))[:2]
    (workdir / "data" / "shapes_demo").mkdir()
    for row in rows:
        shutil.copy(DEMO / row["images"][0], workdir / "data" / row["images"][0])
    (workdir / "data" / "shapes_demo.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    info_file = workdir / "data" / "dataset_info.json"
    info = json.loads(info_file.read_text(encoding="utf-8"))
    info["shapes_demo"] = json.loads((DEMO / "dataset_info.json").read_text(encoding="utf-8"))["shapes_demo"]
    info_file.write_text(json.dumps(info), encoding="utf-8")
    return workdir, rows


def expected_answers(model_dir: Path, picture: Path) -> tuple[str, str, str]:
    """The chat engine's greedy answers to QUESTION about the picture, then to FOLLOW_UP after that answer; and the
    FOLLOW_UP answer had the first turn held no picture."""
    from tuneforge.chat.engine import HuggingFaceEngine
    from tuneforge.config import load_config

    cfg = {"model_name_or_path": str(model_dir), "template": "qwen2_vl", "do_sample": False}
    engine = HuggingFaceEngine(load_config(None, cfg))
    parts = [{"type": "image_url", "image_url": {"url": str(picture)}}, {"type": "text", "text": QUESTION}]
    messages = [{"role": "user", "content": parts}]
    first = engine.chat(messages, max_new_tokens=MAX_NEW_TOKENS)
    later = [{"role": "assistant", "content": first}, {"role": "user", "content": FOLLOW_UP}]
    blind = [{"role": "user", "content": QUESTION}, *later]
    return (first, *(engine.chat(m, max_new_tokens=MAX_NEW_TOKENS) for m in (messages + later, blind)))


def send(page, query: str) -> str:
    """Ask in the Chat tab and wait for the whole reply: a new bubble, and nothing pending any more."""
    bubbles = page.locator("#tf-chatbot .message.bot").count()
    page.locator("#tf-query textarea").fill(query)
    page.locator("#tf-submit_btn").click()
    wait_until(lambda: page.locator("#tf-chatbot .message.bot").count() > bubbles, 60, "the reply bubble")
    time.sleep(0.5)
    busy = "#tf-chatbot .generating, #tf-submit_btn .pending, #tf-chatbot .message.bot .dots"
    wait_until(lambda: not page.locator(busy).count(), 120, "the whole reply")
    return page.locator("#tf-chatbot .message.bot").last.inner_text()


def words(text: str) -> str:
    return " ".join(text.split())


def test_preview_thumbnails_and_chat_with_a_picture(page, server_factory, shapes_workdir, tiny_vlm_dir):
    workdir, rows = shapes_workdir
    model_dir = Path(tiny_vlm_dir("qwen2_vl"))
    server = server_factory(models_flag(model_dir))
    open_page(page, server)

    # Train tab: the preview shows each row's picture beside its tokens
    fill(page, "model_name_or_path", model_dir)
    choose(page, "template", "qwen2_vl")
    choose(page, "dataset", "shapes_demo")
    page.locator("#tf-preview_btn").click()
    box = page.locator("#tf-preview_box")
    box.locator(".tf-preview-row img.tf-thumb").first.wait_for()
    pictures = box.locator(".tf-preview-row").evaluate_all(f"rows => rows.map({PICTURES})")
    names = [str(Path("data") / row["images"][0]) for row in rows]  # paths as the dataset's rows resolve them
    assert pictures == [[{"src": "data:image/png;base64,", "width": 64, "alt": name}] for name in names], pictures
    trained = box.locator(".tf-trained").all_inner_texts()
    assert [t.split("<|im_end|>")[0] for t in trained] == [row["messages"][1]["content"] for row in rows], trained
    text = box.inner_text()
    assert text.count("<|vision_start|><|image_pad|>×4<|vision_end|>") == 2 and QUESTION in text, text
    assert "1 image(s)" in text, text
    shoot(page, "vision-preview")

    # Chat tab: load the model, upload a picture, ask about it
    switch_tab(page, "Chat")
    fill(page, "max_new_tokens", MAX_NEW_TOKENS)
    page.locator("#tf-do_sample input[type=checkbox]").uncheck()
    page.locator("#tf-load_model_btn").click()
    wait_until(lambda: "Model loaded" in page.locator("#tf-chat_status textarea").input_value(), 120, "the model")
    picture = workdir / "data" / rows[0]["images"][0]
    page.locator("#tf-chat_image input[type=file]").set_input_files(str(picture))
    wait_until(lambda: page.locator("#tf-chat_image img").count() > 0, 30, "the uploaded picture")
    reply = send(page, QUESTION)
    answer, follow_up, blind = expected_answers(model_dir, picture)
    assert words(answer) and words(reply) == words(answer), (reply, answer)
    shown = page.locator("#tf-chatbot .message.user").evaluate_all(f"els => els.map({PICTURES})")
    assert [[p["width"] for p in group] for group in shown] == [[64]], shown  # the thumbnail, decoded
    assert QUESTION in page.locator("#tf-chatbot .message.user").last.inner_text()
    assert page.locator("#tf-chat_image img").count() == 0  # the picture went with the message
    assert "⚠" not in page.locator("#tf-chat_status textarea").input_value()

    # The next question, without a new picture: the history (as the browser sends it back) still holds the first
    reply = send(page, FOLLOW_UP)
    assert words(follow_up) and words(reply) == words(follow_up) != words(blind), (reply, follow_up, blind)
    assert "⚠" not in page.locator("#tf-chat_status textarea").input_value()
    shoot(page, "vision-chat")
