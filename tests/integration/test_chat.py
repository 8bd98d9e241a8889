"""Chat: base + adapter, streamed pieces, history, the CLI's --query and piped stdin."""

from __future__ import annotations

import io

import pytest

from tuneforge.chat.engine import HuggingFaceEngine
from tuneforge.chat.repl import run_chat
from tuneforge.config import load_config
from tuneforge.train.run import run_training


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    cfg = load_config(
        None, {"model_name_or_path": str(tiny_model_dir), "template": "qwen", "do_sample": False, "max_new_tokens": 12}
    )
    return HuggingFaceEngine(cfg)


def test_stream_yields_pieces_that_join_to_the_reply(engine):
    messages = [{"role": "user", "content": "Who are you?"}]
    pieces = list(engine.stream(messages))
    assert len(pieces) > 1
    assert "".join(pieces) == engine.chat(messages)


def test_generation_stops_at_max_new_tokens(engine):
    reply = engine.chat([{"role": "user", "content": "hi"}], max_new_tokens=3)
    assert len(engine.tokenizer(reply, add_special_tokens=False).input_ids) <= 4


def test_piped_lines_keep_history_and_clear(engine):
    seen = []
    original = engine.stream_parts

    def spy(messages, *args, **kwargs):
        seen.append([m["content"] for m in messages])
        return original(messages, *args, **kwargs)

    engine.stream_parts = spy
    try:
        out = io.StringIO()
        run_chat(engine, stream_in=io.StringIO("hello\nand then?\nclear\nagain\nexit\nignored\n"), out=out)
    finally:
        del engine.stream_parts
    assert [s[0::2] for s in seen] == [["hello"], ["hello", "and then?"], ["again"]]
    assert out.getvalue().count("Assistant: ") == 3 and "History cleared." in out.getvalue()


def test_chat_with_trained_adapter_reproduces_training_data(train_overrides):
    # Memorise one answer, then greedy chat through the adapter must give it back.
    cfg = train_overrides("lora", max_steps=60, identity_name="Forge", identity_author="Acme")
    out = run_training(load_config(None, cfg))
    chat_cfg = load_config(
        None,
        {
            "model_name_or_path": cfg["model_name_or_path"],
            "adapter_name_or_path": str(out),
            "do_sample": False,
            "max_new_tokens": 24,
        },
    )  # template read from the run
    reply = HuggingFaceEngine(chat_cfg).chat([{"role": "user", "content": "Who are you?"}])
    assert reply == "I am Forge, an assistant made by Acme."
