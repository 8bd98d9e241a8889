"""alpaca / sharegpt / openai rows → Conversation, through every file type; sampling; identity; bad rows; data/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tabular import write_table
from tuneforge.config.data_args import DataArguments
from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.formats import load_conversations, to_conversation
from tuneforge.data.registry import get_dataset_attrs, load_registry
from tuneforge.errors import UserError

REPO_DATA = Path(__file__).resolve().parents[2] / "data"


def _role(role: str):
    return lambda text: Message(role, text)


U, A, F, OBS = (_role(r) for r in ("user", "assistant", "function", "observation"))
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}


def sg(*turns, key="conversations", role="from", content="value", **extra) -> dict:
    """A sharegpt row from (role, text) turns; sg(..., key="messages", role="role", content="content") for openai."""
    return {key: [{role: r, content: t} for r, t in turns], **extra}


def oa(*turns, **extra) -> dict:
    return sg(*turns, key="messages", role="role", content="content", **extra)


def shape(conv: Conversation):
    return conv.messages, conv.system, conv.tools, conv.rejected, conv.kto_tag


def load(tmp_path, rows, entry: dict, kind: str = "json", data_args=None, name: str = "d"):
    """Write rows in `kind`, register them as dataset `name` with `entry`, load the conversations."""
    file_name = f"{name}.{kind}"
    write_table(tmp_path / file_name, rows, kind)
    (tmp_path / "dataset_info.json").write_text(json.dumps({name: {"file_name": file_name, **entry}}))
    [attr] = get_dataset_attrs(name, tmp_path)
    return load_conversations(attr, tmp_path, data_args or DataArguments())


def load_error(tmp_path, rows, entry, kind="json") -> str:
    with pytest.raises(UserError) as err:
        load(tmp_path, rows, entry, kind)
    return str(err.value)


ALPACA = [
    {"instruction": "Translate", "input": "bonjour", "output": "hello", "system": "Be brief."},
    {"instruction": "Say hi", "input": "", "output": "Hi!", "system": ""},
]
SHAREGPT = [
    sg(("system", "You are kind."), ("human", "Hi"), ("gpt", "Hello!"), ("human", "2+2?"), ("gpt", "4")),
    sg(("human", "Weather?"), ("function_call", '{"name": "w"}'), ("observation", "sunny"), ("gpt", "Sunny.")),
]
OPENAI = [
    oa(("system", "Sys"), ("user", "Hi"), ("assistant", "Hello")),
    oa(("user", "1+1?"), ("assistant", "2"), ("user", "2+2?"), ("assistant", "4")),
]
OPENAI_EXPECTED = [
    ([U("Hi"), A("Hello")], "Sys", "", None, None),
    ([U("1+1?"), A("2"), U("2+2?"), A("4")], "", "", None, None),
]


@pytest.mark.parametrize("kind", ["json", "jsonl", "csv", "parquet", "arrow"])
def test_alpaca_each_file_type(tmp_path, kind):
    convs = load(tmp_path, ALPACA, {"columns": {**ALPACA_COLUMNS, "system": "system"}}, kind)
    assert [shape(c) for c in convs] == [
        ([U("Translate\nbonjour"), A("hello")], "Be brief.", "", None, None),
        ([U("Say hi"), A("Hi!")], "", "", None, None),
    ]
    assert convs[0].source.startswith(str(tmp_path / f"d.{kind}:"))


@pytest.mark.parametrize("kind", ["json", "jsonl", "parquet", "arrow"])
def test_sharegpt_each_file_type(tmp_path, kind):
    convs = load(tmp_path, SHAREGPT, {"formatting": "sharegpt"}, kind)
    assert [shape(c) for c in convs] == [
        ([U("Hi"), A("Hello!"), U("2+2?"), A("4")], "You are kind.", "", None, None),
        ([U("Weather?"), F('{"name": "w"}'), OBS("sunny"), A("Sunny.")], "", "", None, None),
    ]


@pytest.mark.parametrize("kind", ["json", "jsonl", "parquet", "arrow"])
def test_openai_each_file_type(tmp_path, kind):
    assert [shape(c) for c in load(tmp_path, OPENAI, {"formatting": "openai"}, kind)] == OPENAI_EXPECTED


def test_openai_as_sharegpt_with_tags_llamafactory_style(tmp_path):
    tags = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}
    entry = {"formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": {**tags, "system_tag": "system"}}
    assert [shape(c) for c in load(tmp_path, OPENAI, entry)] == OPENAI_EXPECTED


def test_txt_pretraining_rows(tmp_path):
    (tmp_path / "c.txt").write_text("First document.\n\nSecond document.\n")
    (tmp_path / "dataset_info.json").write_text(
        json.dumps({"c": {"file_name": "c.txt", "columns": {"prompt": "text"}}})
    )
    convs = load_conversations(get_dataset_attrs("c", tmp_path)[0], tmp_path, DataArguments())
    assert [c.messages for c in convs] == [[U("First document.")], [U("Second document.")]]
    assert [c.source.rsplit(":", 1)[1] for c in convs] == ["1", "3"]
    assert convs[0].pairs() == []


def test_alpaca_history_system_tools(tmp_path):
    row = {"instruction": "And 3+3?", "output": "6", "history": [["1+1?", "2"], ["2+2?", "4"]], "sys": "Math."}
    columns = {"prompt": "instruction", "response": "output", "history": "history", "system": "sys", "tools": "tools"}
    [conv] = load(tmp_path, [{**row, "tools": [{"name": "calc"}]}], {"columns": columns})
    assert conv.messages == [U("1+1?"), A("2"), U("2+2?"), A("4"), U("And 3+3?"), A("6")]
    assert (conv.system, conv.tools) == ("Math.", '[{"name": "calc"}]')


def test_alpaca_ranking_and_kto(tmp_path):
    rows = [{"instruction": "Q", "input": "x", "chosen": "good", "rejected": "bad"}]
    columns = {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}
    [conv] = load(tmp_path, rows, {"ranking": True, "columns": columns})
    assert shape(conv) == ([U("Q\nx"), A("good")], "", "", A("bad"), None)

    rows = [
        {"instruction": "Q", "output": "yes", "label": True},
        {"instruction": "R", "output": "no", "label": "false"},
    ]
    convs = load(tmp_path, rows, {"columns": {"prompt": "instruction", "response": "output", "kto_tag": "label"}})
    assert [(c.messages, c.kto_tag) for c in convs] == [([U("Q"), A("yes")], True), ([U("R"), A("no")], False)]


def test_sharegpt_ranking_and_kto(tmp_path):
    row = sg(("human", "Hi"), ("gpt", "Hey"), ("human", "Joke?"))
    row.update(chosen={"from": "gpt", "value": "Funny"}, rejected={"from": "gpt", "value": "No"})
    columns = {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}
    [conv] = load(tmp_path, [row], {"formatting": "sharegpt", "ranking": True, "columns": columns})
    assert shape(conv) == ([U("Hi"), A("Hey"), U("Joke?"), A("Funny")], "", "", A("No"), None)

    rows = [sg(("human", "Hi"), ("gpt", "Hey"), kto_tag=False)]
    [conv] = load(
        tmp_path, rows, {"formatting": "sharegpt", "columns": {"messages": "conversations", "kto_tag": "kto_tag"}}
    )
    assert (conv.messages, conv.kto_tag) == ([U("Hi"), A("Hey")], False)


def test_openai_tool_calls_and_parallel_tool_results(tmp_path):
    def call(city):
        return {"type": "function", "function": {"name": "weather", "arguments": json.dumps({"city": city})}}

    tools = [{"type": "function", "function": {"name": "weather"}}]
    first = oa(("user", "Paris?"), ("assistant", None), ("tool", "20C"), ("assistant", "20 degrees."), tools=tools)
    first["messages"][1]["tool_calls"] = [call("Paris")]
    second = oa(("user", "x"), ("assistant", ""), ("tool", "20C"), ("tool", "25C"), ("assistant", "20 and 25."))
    second["messages"][0]["content"] = [{"type": "text", "text": "Both?"}]
    second["messages"][1]["tool_calls"] = [call("Paris"), call("Rome")]
    a, b = load(
        tmp_path, [first, second], {"formatting": "openai", "columns": {"messages": "messages", "tools": "tools"}}
    )
    assert a.messages == [
        U("Paris?"),
        F('{"name": "weather", "arguments": {"city": "Paris"}}'),
        OBS("20C"),
        A("20 degrees."),
    ]
    assert json.loads(a.tools) == tools
    assert b.messages[0] == U("Both?") and b.messages[2] == OBS("20C\n25C") and b.tools == ""
    calls = [{"name": "weather", "arguments": {"city": "Paris"}}, {"name": "weather", "arguments": {"city": "Rome"}}]
    assert json.loads(b.messages[1].content) == calls


def test_identity_placeholders_filled(tmp_path):
    rows = [{"instruction": "Who are you?", "output": "I am {{name}}, made by {{author}}."}]
    [conv] = load(tmp_path, rows, {}, data_args=DataArguments(identity_name="Ada", identity_author="ACME Labs"))
    assert conv.messages[-1].content == "I am Ada, made by ACME Labs."


def test_num_samples_and_max_samples(tmp_path):
    rows = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(10)]

    def prompts(entry, **kw):
        return [c.messages[0].content for c in load(tmp_path, rows, entry, data_args=DataArguments(**kw))]

    assert prompts({}) == [f"q{i}" for i in range(10)]
    fewer = prompts({"num_samples": 4})
    assert len(fewer) == len(set(fewer)) == 4 and fewer == prompts({"num_samples": 4})  # a fixed random subset
    more = prompts({"num_samples": 25})
    assert len(more) == 25 and set(more) == {f"q{i}" for i in range(10)}  # every row at least once
    assert prompts({}, max_samples=3) == ["q0", "q1", "q2"]
    assert prompts({"num_samples": 25}, max_samples=12) == more[:12]


# ---- bad input ------------------------------------------------------------------------------------------------


def test_missing_column_names_file_line_and_column(tmp_path):
    rows = [{"instruction": "a", "output": "b"}, {"instruction": "c", "answer": "d"}]
    text = load_error(tmp_path, rows, {})
    assert f"{tmp_path / 'd.json'}:6: column 'output' missing in dataset 'd' (formatting alpaca)" in text
    assert "set columns in dataset_info.json" in text
    text = load_error(
        tmp_path, rows[:1], {"columns": {"prompt": "instruction", "response": "output", "system": "sytem"}}
    )
    assert "column 'sytem' missing" in text


def test_txt_without_columns_says_which_column(tmp_path):
    (tmp_path / "c.txt").write_text("hello\n")
    (tmp_path / "dataset_info.json").write_text(json.dumps({"c": {"file_name": "c.txt"}}))
    with pytest.raises(UserError, match=r"c.txt:1: column 'instruction' missing .* the row has: text"):
        load_conversations(get_dataset_attrs("c", tmp_path)[0], tmp_path, DataArguments())


@pytest.mark.parametrize(
    "turns, pattern",
    [
        ([("human", "a"), ("human", "b")], r"turn 2 is 'user' but should be assistant or function"),
        ([("gpt", "a"), ("human", "b")], r"turn 1 is 'assistant' but should be user or observation"),
        ([("human", "a"), ("gpt", "b"), ("human", "c")], r"ends with a user turn"),
        ([("human", "a"), ("bot", "b")], r"unknown role 'bot'"),
        ([("human", "a"), ("gpt", "b"), ("system", "c")], r"a system turn may only come first"),
        ([("human", "a"), ("gpt", "")], r"is empty"),
        ([("human", "a"), ("gpt", 5)], r"must be a string, got int"),
        ([("system", "s")], r"no user or assistant turns"),
    ],
)
def test_bad_sharegpt_rows(tmp_path, turns, pattern):
    text = load_error(tmp_path, [sg(("human", "ok"), ("gpt", "ok")), sg(*turns)], {"formatting": "sharegpt"}, "jsonl")
    assert text.startswith(f"{tmp_path / 'd.jsonl'}:2: ") and re.search(pattern, text), text


@pytest.mark.parametrize(
    "row, pattern",
    [
        ({"instruction": "q", "output": ""}, r"the response is empty"),
        ({"instruction": "q", "output": None}, r"the response must be a string, got NoneType"),
        ({"instruction": "", "input": "", "output": "a"}, r"the prompt is empty"),
        (
            {"instruction": "q", "output": "a", "history": [["only one"]]},
            r"history item 0 must be \[prompt, response\]",
        ),
    ],
)
def test_bad_alpaca_rows(tmp_path, row, pattern):
    columns = {**ALPACA_COLUMNS, "history": "history"} if "history" in row else ALPACA_COLUMNS
    text = load_error(tmp_path, [row], {"columns": columns})
    assert f"{tmp_path / 'd.json'}:2" in text and re.search(pattern, text), text


def test_bad_kto_tag_and_malformed_json(tmp_path):
    columns = {"prompt": "instruction", "response": "output", "kto_tag": "t"}
    assert "kto_tag must be true or false" in load_error(
        tmp_path, [{"instruction": "q", "output": "a", "t": "?"}], {"columns": columns}
    )
    (tmp_path / "m.json").write_text('[\n {"instruction": "a", "output": "b"},\n {"instruction": "a" "output": "b"}\n]')
    (tmp_path / "dataset_info.json").write_text(json.dumps({"m": {"file_name": "m.json"}}))
    with pytest.raises(UserError, match=r"m.json:3: invalid JSON"):
        load_conversations(get_dataset_attrs("m", tmp_path)[0], tmp_path, DataArguments())


def test_empty_dataset_and_wrong_split(tmp_path):
    (tmp_path / "e.json").write_text("[]")
    info = {"e": {"file_name": "e.json"}, "s": {"file_name": "e.json", "split": "test"}}
    (tmp_path / "dataset_info.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match=r"e.json: the file holds no rows"):
        load_conversations(get_dataset_attrs("e", tmp_path)[0], tmp_path, DataArguments())
    with pytest.raises(UserError, match=r"split 'test' applies only to a saved DatasetDict"):
        load_conversations(get_dataset_attrs("s", tmp_path)[0], tmp_path, DataArguments())


def test_to_conversation_sets_source(tmp_path):
    (tmp_path / "dataset_info.json").write_text(json.dumps({"x": {"file_name": "x.json"}}))
    conv = to_conversation({"instruction": "q", "output": "a"}, load_registry(tmp_path)["x"], "x.json:7")
    assert conv.source == "x.json:7" and conv.messages == [U("q"), A("a")]


# ---- the shipped data/ ----------------------------------------------------------------------------------------


def test_shipped_datasets_all_load():
    registry = load_registry(REPO_DATA)
    assert {"identity", "alpaca_en_demo", "alpaca_zh_demo", "sharegpt_demo"} <= set(registry)
    for name in registry:
        attr = get_dataset_attrs(name, REPO_DATA)[0]
        convs = load_conversations(attr, REPO_DATA, DataArguments())
        assert len(convs) >= 20, name  # enough to train a few steps on
        text_only = attr.formatting == "alpaca" and not attr.response and not attr.ranking  # pt text, ppo prompts
        for conv in convs:
            assert conv.pairs() or (text_only and conv.messages[0].content.strip()), conv.source
            assert all("{{" not in m.content for m in conv.messages), conv.source


def test_shipped_identity_has_core_questions():
    args = DataArguments(identity_name="Ada", identity_author="ACME")
    convs = load_conversations(get_dataset_attrs("identity", REPO_DATA)[0], REPO_DATA, args)
    answers = {c.messages[0].content: c.messages[-1].content for c in convs}
    assert "Ada" in answers["Who are you?"] and "ACME" in answers["Who are you?"]
    assert "Ada" in answers["你是谁？"] and "ACME" in answers["你是谁？"]
    assert len(answers) == len(convs)  # each question once: one answer per question
    assert sum(any("\u4e00" <= ch <= "\u9fff" for ch in p) for p in answers) >= 35  # the Chinese half


def test_shipped_sharegpt_demo_is_multi_turn():
    convs = load_conversations(get_dataset_attrs("sharegpt_demo", REPO_DATA)[0], REPO_DATA, DataArguments())
    assert len(convs) >= 45 and all(2 <= len(c.pairs()) <= 4 for c in convs) and any(c.system for c in convs)


def test_answer_column_reaches_the_conversation(tmp_path):
    """GRPO's reference answer: text or a number (as text), null = none; alpaca and sharegpt alike."""
    rows = [{"q": "1+1?", "a": 2}, {"q": "Name?", "a": "Tune"}, {"q": "Free?", "a": None}]
    convs = load(tmp_path, rows, {"columns": {"prompt": "q", "answer": "a"}})
    assert [c.extra.get("answer") for c in convs] == ["2", "Tune", None]
    assert [m.content for c in convs for m in c.messages] == ["1+1?", "Name?", "Free?"]
    rows = [sg(("human", "3+4?"), ("gpt", "7"), sol=7)]
    entry = {"formatting": "sharegpt", "columns": {"messages": "conversations", "answer": "sol"}}
    (conv,) = load(tmp_path, rows, entry)
    assert conv.extra == {"answer": "7"}


def test_answer_column_errors_name_the_row(tmp_path):
    message = load_error(tmp_path, [{"q": "x", "a": [1, 2]}], {"columns": {"prompt": "q", "answer": "a"}})
    assert "the answer column 'a' must hold text or a number, got list" in message and "d.json:" in message
    message = load_error(tmp_path, [{"q": "x"}], {"columns": {"prompt": "q", "answer": "a"}})
    assert "column 'a' missing" in message
