"""Reasoning data: OpenAI-format `reasoning_content` / `reasoning` → Message.reasoning; <think> blocks in sharegpt
content stay in the content (LLaMA-Factory's rule); bad rows are errors naming the row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuneforge.data.conversation import Message
from tuneforge.data.formats import load_conversations
from tuneforge.data.registry import get_dataset_attrs
from tuneforge.errors import UserError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "thinking"


def load(name: str, folder: Path = FIXTURES):
    [attr] = get_dataset_attrs(name, folder)
    return load_conversations(attr, folder)


def test_openai_reasoning_fields_become_message_reasoning():
    first, second = load("think_openai")
    assert first.messages[1] == Message("assistant", "2+3=5.", "Add two and three.")
    assert first.messages[3] == Message("assistant", "10.", "Five plus five.")
    assert second.messages[1] == Message("assistant", "Blue.")  # reasoning_content: null
    assert second.messages[3] == Message("assistant", "Red.", "Pick a warm one.")  # vLLM's `reasoning`
    assert second.source.endswith("openai_reasoning.jsonl:2")


def test_think_blocks_stay_in_sharegpt_content():
    first, _ = load("think_sharegpt")
    assert first.messages[1] == Message("assistant", "<think>\nAdd two and three.\n</think>\n\n2+3=5.")
    assert all(m.reasoning is None for m in first.messages)


def write(tmp_path: Path, message: dict) -> Path:
    row = {"messages": [{"role": "user", "content": "Hi"}, message]}
    (tmp_path / "d.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    info = {"d": {"file_name": "d.jsonl", "formatting": "openai"}}
    (tmp_path / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"role": "assistant", "content": "Hello", "reasoning_content": 3}, "'reasoning_content' must be a string"),
        (
            {"role": "assistant", "content": "Hello", "reasoning_content": "a", "reasoning": "b"},
            "both 'reasoning_content' and 'reasoning'",
        ),
        (
            {"role": "assistant", "content": "<think>\nx\n</think>\n\nHello", "reasoning_content": "x"},
            "gives its thinking twice",
        ),
    ],
)
def test_bad_reasoning_names_the_row(tmp_path, message, error):
    with pytest.raises(UserError, match=error) as err:
        load("d", write(tmp_path, message))
    assert "d.jsonl:1" in str(err.value)


def test_reasoning_on_a_user_message_is_refused(tmp_path):
    row = {
        "messages": [
            {"role": "user", "content": "Hi", "reasoning_content": "x"},
            {"role": "assistant", "content": "Yo"},
        ]
    }
    (tmp_path / "d.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    (tmp_path / "dataset_info.json").write_text(json.dumps({"d": {"file_name": "d.jsonl", "formatting": "openai"}}))
    with pytest.raises(UserError, match="only read on assistant messages"):
        load("d", tmp_path)


def test_empty_or_equal_reasoning_fields_are_accepted(tmp_path):
    [conv] = load("d", write(tmp_path, {"role": "assistant", "content": "Hello", "reasoning_content": " \n"}))
    assert conv.messages[1].reasoning is None
    both = {"role": "assistant", "content": "Hello", "reasoning_content": "x", "reasoning": "x"}
    [conv] = load("d", write(tmp_path, both))
    assert conv.messages[1].reasoning == "x"
