"""dataset_info.json parsing and the file readers (every file type, sources, bad files)."""

from __future__ import annotations

import json

import pytest

from tabular import write_table
from tuneforge.data.readers import read_rows
from tuneforge.data.registry import get_dataset_attrs, load_registry, split_names
from tuneforge.errors import UserError

ROWS = [
    {"instruction": "Say hi", "input": "", "output": "Hi!"},
    {"instruction": "Add", "input": "1 + 2", "output": "3"},
]


def write_info(folder, info: dict):
    (folder / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")


# ---- registry -------------------------------------------------------------------------------------------------


def test_defaults_follow_llamafactory(tmp_path):
    write_info(
        tmp_path,
        {
            "a": {"file_name": "a.json"},
            "s": {"file_name": "s.json", "formatting": "sharegpt"},
            "o": {"file_name": "o.json", "formatting": "openai"},
        },
    )
    reg = load_registry(tmp_path)
    a, s, o = reg["a"], reg["s"], reg["o"]
    assert (a.formatting, a.ranking, a.split, a.num_samples) == ("alpaca", False, "train", None)
    assert (a.prompt, a.query, a.response, a.history, a.system) == ("instruction", "input", "output", None, None)
    assert (s.messages, s.role_tag, s.content_tag, s.user_tag, s.assistant_tag) == (
        "conversations",
        "from",
        "value",
        "human",
        "gpt",
    )
    assert (s.observation_tag, s.function_tag, s.system_tag) == ("observation", "function_call", "system")
    assert (o.messages, o.role_tag, o.content_tag, o.user_tag, o.assistant_tag) == (
        "messages",
        "role",
        "content",
        "user",
        "assistant",
    )
    assert (o.observation_tag, o.system_tag) == ("tool", "system")
    assert a.where.endswith("dataset_info.json:2")


def test_columns_and_tags(tmp_path):
    write_info(
        tmp_path,
        {
            "pt": {"file_name": "c4.jsonl", "columns": {"prompt": "text"}},
            "rank": {
                "file_name": "d.json",
                "ranking": True,
                "num_samples": 5,
                "columns": {"prompt": "q", "query": "i", "chosen": "good", "rejected": "bad", "system": "sys"},
            },
            "sg": {"file_name": "d.json", "formatting": "sharegpt", "tags": {"role_tag": "role", "user_tag": "user"}},
        },
    )
    reg = load_registry(tmp_path)
    # As in LLaMA-Factory, alpaca columns not listed under "columns" are unset.
    assert (reg["pt"].prompt, reg["pt"].query, reg["pt"].response) == ("text", None, None)
    r = reg["rank"]
    assert (r.ranking, r.num_samples, r.prompt, r.query, r.chosen, r.rejected, r.system) == (
        True,
        5,
        "q",
        "i",
        "good",
        "bad",
        "sys",
    )
    sg = reg["sg"]
    assert (sg.role_tag, sg.user_tag, sg.content_tag, sg.assistant_tag) == ("role", "user", "value", "gpt")


def test_missing_info_file(tmp_path):
    with pytest.raises(UserError) as err:
        load_registry(tmp_path)
    assert str(tmp_path / "dataset_info.json") in str(err.value)
    assert "dataset_dir" in err.value.fix


def test_invalid_info_json_names_line(tmp_path):
    (tmp_path / "dataset_info.json").write_text('{\n  "a": {"file_name": "a.json"},\n  "b": {,}\n}\n')
    with pytest.raises(UserError, match=r"dataset_info.json:3: invalid JSON"):
        load_registry(tmp_path)


@pytest.mark.parametrize(
    "entry, pattern",
    [
        ({"file_name": "a.json", "formatting": "sharegtp"}, r"dataset 'x': unknown formatting 'sharegtp'.*openai"),
        ({"formatting": "alpaca"}, r"dataset 'x' has no file_name"),
        ({"file_name": "a.json", "colums": {}}, r"unknown dataset key 'colums'.*did you mean 'columns'"),
        ({"file_name": "a.json", "columns": {"promt": "q"}}, r"unknown column key 'promt'.*'prompt'"),
        ({"file_name": "a.json", "num_samples": 0}, r"num_samples must be a positive integer"),
        ({"file_name": "a.json", "ranking": "false"}, r"ranking must be true or false, got 'false'"),
        ({"file_name": ["a.json"]}, r"file_name must be a string"),
    ],
)
def test_bad_entries(tmp_path, entry, pattern):
    write_info(tmp_path, {"ok": {"file_name": "ok.json"}, "x": entry})
    with pytest.raises(UserError, match=pattern) as err:
        load_registry(tmp_path)
    assert "dataset_info.json:" in str(err.value)


def test_unknown_llamafactory_keys_are_accepted(tmp_path):
    write_info(tmp_path, {"x": {"file_name": "a.json", "file_sha1": "abc", "subset": None, "stage": "sft"}})
    assert load_registry(tmp_path)["x"].file_name == "a.json"


def test_get_dataset_attrs_names_and_order(tmp_path):
    write_info(tmp_path, {"alpha": {"file_name": "a.json"}, "beta": {"file_name": "b.json"}})
    assert [a.name for a in get_dataset_attrs(" beta, alpha ,", tmp_path)] == ["beta", "alpha"]
    assert [a.name for a in get_dataset_attrs(["alpha"], tmp_path)] == ["alpha"]
    assert get_dataset_attrs(None, tmp_path) == [] and get_dataset_attrs("", tmp_path) == []
    assert split_names("a,,b") == ["a", "b"]


def test_unknown_dataset_suggests_closest(tmp_path):
    write_info(tmp_path, {"alpaca_en_demo": {"file_name": "a.json"}, "identity": {"file_name": "i.json"}})
    with pytest.raises(UserError) as err:
        get_dataset_attrs("alpaca_en_dem", tmp_path)
    text = str(err.value)
    assert "unknown dataset 'alpaca_en_dem'" in text
    assert "did you mean 'alpaca_en_demo'" in text and "identity" in text


def test_hub_and_audio_datasets_are_refused_when_selected(tmp_path):
    write_info(
        tmp_path,
        {
            "hub": {"hf_hub_url": "org/data"},
            "hub_local": {"hf_hub_url": "org/data", "file_name": "a.json"},
            "mm": {"file_name": "m.json", "columns": {"messages": "m", "images": "pics"}, "formatting": "sharegpt"},
            "audio": {"file_name": "m.json", "columns": {"messages": "m", "audios": "a"}, "formatting": "sharegpt"},
        },
    )
    reg = load_registry(tmp_path)  # listing them is fine
    assert reg["hub"].hub_url == 'hf_hub_url "org/data"'
    with pytest.raises(UserError, match=r'hf_hub_url "org/data".*download it .* set file_name'):
        get_dataset_attrs("hub", tmp_path)
    assert get_dataset_attrs("hub_local", tmp_path)[0].file_name == "a.json"
    # images and videos are read (tests/unit/test_media_data.py); audio is refused when selected
    assert get_dataset_attrs("mm", tmp_path)[0].images == "pics"
    with pytest.raises(UserError, match=r"audio column 'a'; audio in the data is not supported yet"):
        get_dataset_attrs("audio", tmp_path)


# ---- readers --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, suffix, sources",
    [
        ("json", ".json", [":2", ":7"]),
        ("jsonl", ".jsonl", [":1", ":2"]),
        ("csv", ".csv", [":2", ":3"]),
        ("parquet", ".parquet", [":row 0", ":row 1"]),
        ("arrow", ".arrow", [":row 0", ":row 1"]),
        ("arrow-stream", ".arrow", [":row 0", ":row 1"]),
    ],
)
def test_read_rows_each_type(tmp_path, kind, suffix, sources):
    path = write_table(tmp_path / f"d{suffix}", ROWS, kind)
    rows = read_rows(path)
    assert [r for r, _ in rows] == ROWS
    assert [s for _, s in rows] == [f"{path}{s}" for s in sources]


def test_json_array_line_numbers_compact_and_nested(tmp_path):
    text = '[{"a": 1},\n\n {"a": {"b": [1,\n 2]}}, {"a": 3},\n{"a": "x\\ny"}]'
    path = tmp_path / "d.json"
    path.write_text(text)
    assert [s.rsplit(":", 1)[1] for _, s in read_rows(path)] == ["1", "3", "4", "5"]


def test_jsonl_content_in_json_file_and_blank_lines(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert read_rows(path) == [({"a": 1}, f"{path}:1"), ({"a": 2}, f"{path}:3")]


def test_txt_rows(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("first line\n\n  \nsecond line\n", encoding="utf-8")
    assert read_rows(path) == [({"text": "first line"}, f"{path}:1"), ({"text": "second line"}, f"{path}:4")]


def test_csv_multiline_field_keeps_start_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('instruction,output\n"two\nlines",a\nq,b\n')
    assert [s for _, s in read_rows(path)] == [f"{path}:2", f"{path}:4"]


def test_folder_reads_supported_files_sorted(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    write_table(folder / "b.jsonl", ROWS[1:], "jsonl")
    write_table(folder / "a.json", ROWS[:1], "json")
    (folder / "README.md").write_text("notes")
    assert [r for r, _ in read_rows(folder)] == ROWS


def test_save_to_disk_folders(tmp_path):
    from datasets import Dataset, DatasetDict

    Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "saved"))
    assert [r for r, _ in read_rows(tmp_path / "saved")] == ROWS
    DatasetDict({"train": Dataset.from_list(ROWS[:1]), "test": Dataset.from_list(ROWS[1:])}).save_to_disk(
        str(tmp_path / "dd")
    )
    assert [r for r, _ in read_rows(tmp_path / "dd", split="test")] == ROWS[1:]
    with pytest.raises(UserError, match=r"split 'dev' not found.*\['test', 'train'\]"):
        read_rows(tmp_path / "dd", split="dev")


@pytest.mark.parametrize(
    "name, text, pattern",
    [
        ("bad.json", '[\n  {"a": 1},\n  {"a": 2,}\n]', r"bad.json:3: invalid JSON"),
        ("bad.json", '[\n  {"a": 1}\n  {"a": 2}\n]', r"bad.json:3: invalid JSON: expecting ','"),
        ("bad.json", '[\n  {"a": 1},\n', r"bad.json:3: invalid JSON"),
        ("bad.jsonl", '{"a": 1}\n{"a": 2\n', r"bad.jsonl:2: invalid JSON"),
        ("list.json", "[1, 2]", r"list.json:1: a JSON dataset must be a list of objects, found a int"),
        ("obj.json", '{\n  "data": [{"a": 1}]\n}', r"obj.json:1: a JSON dataset must be a list of objects.*'data'"),
        ("arr.jsonl", '{"a": 1}\n[1]\n', r"arr.jsonl:2: each line must be a JSON object"),
        ("empty.json", "  \n", r"empty.json: the file holds no rows"),
        ("empty.json", "[]", r"empty.json: the file holds no rows"),
        ("data.xlsx", "x", r"unsupported file type '.xlsx'.*\.json, \.jsonl, \.csv, \.parquet, \.arrow, \.txt"),
    ],
)
def test_bad_files(tmp_path, name, text, pattern):
    (tmp_path / name).write_text(text)
    with pytest.raises(UserError, match=pattern):
        read_rows(tmp_path / name)


def test_missing_file_and_bad_arrow(tmp_path):
    with pytest.raises(UserError, match=r"nope.json: dataset file not found"):
        read_rows(tmp_path / "nope.json")
    (tmp_path / "x.arrow").write_bytes(b"not arrow at all")
    with pytest.raises(UserError, match=r"x.arrow: cannot read Arrow IPC"):
        read_rows(tmp_path / "x.arrow")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"no dataset files in folder"):
        read_rows(tmp_path / "empty")
