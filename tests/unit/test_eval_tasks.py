"""Task folders: the shipped sample reads, malformed folders fail with the file and what is wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tuneforge.data.conversation import ASSISTANT, USER, Conversation, Message
from tuneforge.errors import UserError
from tuneforge.evaluate.mc import letter_token_ids
from tuneforge.evaluate.prompt import WRAPPERS, build_conversation, format_question, task_to_alpaca
from tuneforge.evaluate.tasks import CHOICES, load_task

EVAL_DIR = Path(__file__).resolve().parents[2] / "evaluation"
HEADER = "question,A,B,C,D,answer\n"


def test_sample_task_reads_with_subjects_categories_and_splits():
    task = load_task("sample", EVAL_DIR, n_shot=5)
    assert task.split == "test"
    assert len(task.subjects) >= 4 and len(task.categories) >= 3
    for subject in task.subjects:
        assert len(subject.splits["dev"]) >= 5 and subject.splits["test"]
        assert all(q.answer in CHOICES and len(q.choices) == 4 for q in subject.splits["test"])
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in s.name) for s in task.subjects)  # a Chinese subject
    train = load_task("sample_train", EVAL_DIR)
    assert train.split == "train"
    assert sum(len(s.splits["train"]) for s in train.subjects) > sum(len(s.splits["test"]) for s in task.subjects)


def test_prompts_in_both_languages_and_n_shot_history():
    task = load_task("sample", EVAL_DIR, n_shot=2)
    subject = task.subjects[0]
    q, shots = subject.splits["test"][0], subject.splits["dev"][:2]
    for lang, wrapper in WRAPPERS.items():
        conv = build_conversation(q, shots, subject.name, wrapper)
        assert [m.role for m in conv.messages] == [USER, ASSISTANT, USER, ASSISTANT, USER]
        assert conv.messages[0].content.startswith(wrapper.system.format(subject=subject.name))
        assert conv.messages[1].content == shots[0].answer
        assert conv.messages[-1].content == format_question(q, wrapper)
        assert conv.messages[-1].content.endswith(wrapper.answer)
        for letter, choice in zip(CHOICES, q.choices, strict=True):
            assert wrapper.choice.format(choice=letter, content=choice) in conv.messages[-1].content, lang
    rows = task_to_alpaca(task)
    assert len(rows) == sum(len(s.splits["test"]) for s in task.subjects)
    assert rows[0]["output"] == q.answer and rows[0]["instruction"].endswith(WRAPPERS["en"].answer)


@pytest.mark.parametrize("name", ["qwen", "llama3", "default", "alpaca", "mistral", "tokenizer"])
def test_letter_tokens_are_the_first_reply_token(tiny_tokenizer, name):
    from tuneforge.data.template import get_template

    template = get_template(name, tiny_tokenizer)
    prefix, ids = letter_token_ids(template, tiny_tokenizer)
    assert len(set(ids)) == 4
    for letter, token in zip(CHOICES, ids, strict=True):
        reply = template.encode_multiturn(
            tiny_tokenizer, Conversation([Message(USER, "?"), Message(ASSISTANT, letter)])
        )
        assert reply[0][1][: len(prefix) + 1] == prefix + [token]
        assert tiny_tokenizer.decode([token]).strip() == letter


@pytest.fixture
def task_dir(tmp_path):
    """A copy of the sample task to break."""
    shutil.copytree(EVAL_DIR / "sample", tmp_path / "mine")
    return tmp_path


def _error(task_dir, task="mine", n_shot=5) -> UserError:
    with pytest.raises(UserError) as info:
        load_task(task, task_dir, n_shot=n_shot)
    return info.value


def test_missing_mapping(task_dir):
    (task_dir / "mine" / "mapping.json").unlink()
    err = _error(task_dir)
    assert err.where == str(task_dir / "mine" / "mapping.json") and "not found" in err.message
    assert "unknown" not in err.one_line()


def test_bad_mapping_entry(task_dir):
    (task_dir / "mine" / "mapping.json").write_text(json.dumps({"colors": {"name": "colors"}}), encoding="utf-8")
    err = _error(task_dir)
    assert err.where.endswith("mapping.json") and "'category'" in err.message and "colors" in err.message


def test_missing_column(task_dir):
    file = task_dir / "mine" / "colors_test.csv"
    file.write_text("question,A,B,C,D\nWhat colour is snow?,red,white,blue,green\n", encoding="utf-8")
    err = _error(task_dir)
    assert err.where == f"{file}:1" and "'answer'" in err.message


def test_answer_not_a_choice_letter(task_dir):
    file = task_dir / "mine" / "capitals_dev.csv"
    file.write_text(HEADER + "Capital of France?,Paris,Rome,Oslo,Lima,A\nCapital of Peru?,Paris,Rome,Oslo,Lima,E\n")
    err = _error(task_dir)
    assert err.where == f"{file}:3" and "'E'" in err.message and "A, B, C, D" in err.message


def test_empty_split_and_header_only_split(task_dir):
    file = task_dir / "mine" / "animal_sounds_test.csv"
    file.write_text("", encoding="utf-8")
    err = _error(task_dir)
    assert err.where == str(file) and "empty" in err.message
    file.write_text(HEADER, encoding="utf-8")
    assert "empty" in _error(task_dir).message


def test_short_row_and_missing_split_file(task_dir):
    file = task_dir / "mine" / "colors_test.csv"
    file.write_text(HEADER + "What colour is snow?,red,white\n", encoding="utf-8")
    err = _error(task_dir)
    assert err.where == f"{file}:2" and "3 cells" in err.message
    file.unlink()
    err = _error(task_dir)
    assert err.where == str(file) and "not found" in err.message
    assert "dev split" not in err.message
    (task_dir / "mine" / "colors_dev.csv").unlink()
    (task_dir / "mine" / "colors_test.csv").write_text(HEADER + "Snow?,red,white,blue,green,B\n")
    assert _error(task_dir).where == str(task_dir / "mine" / "colors_dev.csv")  # n-shot needs the dev split
    load_task("mine", task_dir, n_shot=0)  # zero-shot does not


def test_unknown_task_lists_the_known_ones(task_dir):
    err = _error(task_dir, task="mmlu")
    assert err.where == "task" and "mine" in err.fix


def test_headerless_csv_in_mmlu_order(task_dir):
    (task_dir / "mine" / "colors_test.csv").write_text('"Snow, in winter?",red,white,blue,green,b\n')
    task = load_task("mine", task_dir, n_shot=0)
    q = task.subjects[[s.key for s in task.subjects].index("colors")].splits["test"][0]
    assert (q.question, q.choices, q.answer) == ("Snow, in winter?", ("red", "white", "blue", "green"), "B")
