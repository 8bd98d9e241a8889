"""Property tests: arbitrary JSON through the dataset registry, the format converters and the SFT encoder never
raises anything but our clear `UserError` — and what does come through is a well-formed training example."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuneforge.data.formats import to_conversation
from tuneforge.data.registry import _parse_entry
from tuneforge.data.sft import IGNORE_INDEX, encode_sft_example
from tuneforge.data.template import get_template
from tuneforge.errors import UserError

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# JSON values, biased towards the shapes datasets really have (strings, lists of message objects)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
ROLES = ["human", "gpt", "user", "assistant", "system", "observation", "function_call", "tool", "function", "robot"]
KEYS = ["from", "value", "role", "content", "tool_calls", "name", "arguments", "type", "text"]
message = st.dictionaries(
    st.sampled_from(KEYS),
    st.sampled_from(ROLES) | st.text(max_size=20) | json_values,
    max_size=4,
)
messages = st.lists(message, max_size=6) | json_values
COLUMNS = ["instruction", "input", "output", "system", "history", "tools", "conversations", "messages", "kto_tag"]
rows = st.dictionaries(
    st.sampled_from(COLUMNS) | st.text(max_size=8),
    st.text(max_size=40) | json_values | messages,
    max_size=6,
)
# well-formed conversations too, so the encoder sees many rows that get through the converter
good_turns = st.lists(
    st.tuples(st.text(min_size=0, max_size=40), st.text(min_size=0, max_size=40)), min_size=1, max_size=4
)

ENTRIES = {
    "alpaca": {"file_name": "x.json"},
    "alpaca-columns": {
        "file_name": "x.json",
        "columns": {
            "prompt": "instruction",
            "query": "input",
            "response": "output",
            "system": "system",
            "history": "history",
            "tools": "tools",
        },
    },
    "sharegpt": {"file_name": "x.json", "formatting": "sharegpt", "columns": {"system": "system", "tools": "tools"}},
    "openai": {"file_name": "x.json", "formatting": "openai", "columns": {"tools": "tools"}},
    "kto": {"file_name": "x.json", "formatting": "sharegpt", "columns": {"kto_tag": "kto_tag"}},
}
ATTRS = {name: _parse_entry("x", entry, "dataset_info.json:1") for name, entry in ENTRIES.items()}


def convert(row, attr):
    try:
        return to_conversation(row, attr, "x.json:1")
    except UserError as err:
        assert err.one_line() and "\n" not in err.one_line()
        return None


@pytest.mark.parametrize("fmt", list(ATTRS))
@SETTINGS
@given(row=rows)
def test_converters_raise_only_user_error(fmt, row):
    conv = convert(row, ATTRS[fmt])
    if conv is not None:
        assert conv.source == "x.json:1"
        assert all(isinstance(m.content, str) for m in conv.messages)


@SETTINGS
@given(
    entry=json_values
    | st.dictionaries(
        st.sampled_from(
            ["file_name", "formatting", "columns", "tags", "ranking", "num_samples", "split", "hf_hub_url"]
        ),
        json_values,
    )
)
def test_registry_entries_raise_only_user_error(entry):
    try:
        attr = _parse_entry("x", entry, "dataset_info.json:1")
    except UserError:
        return
    assert attr.formatting in ("alpaca", "sharegpt", "openai")


@pytest.fixture(scope="module")
def templates(tiny_tokenizer):
    return {name: get_template(name, tiny_tokenizer) for name in ("qwen", "llama3", "default", "empty")}


def check_encoding(conv, template, tokenizer, cutoff_len, mask_history):
    try:
        example = encode_sft_example(conv, template, tokenizer, cutoff_len=cutoff_len, mask_history=mask_history)
    except UserError as err:
        assert "\n" not in err.one_line()
        return
    ids, labels = example["input_ids"], example["labels"]
    assert 0 < len(ids) <= cutoff_len and len(labels) == len(ids) == len(example["attention_mask"])
    assert all(label in (IGNORE_INDEX, token) for label, token in zip(labels, ids, strict=True))


@pytest.mark.parametrize("fmt", ["alpaca-columns", "sharegpt", "openai"])
@SETTINGS
@given(row=rows, cutoff_len=st.integers(2, 96), mask_history=st.booleans(), name=st.sampled_from(["qwen", "llama3"]))
def test_encoder_raises_only_user_error_on_arbitrary_rows(
    fmt, row, cutoff_len, mask_history, name, templates, tiny_tokenizer
):
    conv = convert(row, ATTRS[fmt])
    if conv is not None:
        check_encoding(conv, templates[name], tiny_tokenizer, cutoff_len, mask_history)


@SETTINGS
@given(
    turns=good_turns,
    system=st.text(max_size=20),
    cutoff_len=st.integers(2, 96),
    mask_history=st.booleans(),
    name=st.sampled_from(["qwen", "llama3", "default", "empty"]),
    tools=st.sampled_from(["", "[]", "nope", "{}"]),
)
def test_encoder_on_well_formed_conversations(
    turns, system, cutoff_len, mask_history, name, tools, templates, tiny_tokenizer
):
    history = [list(t) for t in turns[:-1]]
    row = {"instruction": turns[-1][0], "output": turns[-1][1], "history": history, "system": system, "tools": tools}
    conv = convert(json.loads(json.dumps(row)), ATTRS["alpaca-columns"])
    if conv is not None:
        check_encoding(conv, templates[name], tiny_tokenizer, cutoff_len, mask_history)
