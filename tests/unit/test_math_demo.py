"""The shipped math_demo set (GRPO's demo data): what scripts/make_math_demo.py builds, registered with its answer
column, readable by the registry and loader, and every worked solution's final answer is the row's answer."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tuneforge.data.formats import load_conversations
from tuneforge.data.readers import read_rows
from tuneforge.data.registry import get_dataset_attrs
from tuneforge.train.rewards.builtins import AccuracyReward

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"


def test_math_demo_file_is_what_the_script_builds(tmp_path):
    script = ROOT / "scripts" / "make_math_demo.py"
    check = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert check.returncode == 0, check.stdout + check.stderr
    fresh = subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], capture_output=True, cwd=ROOT)
    assert fresh.returncode == 0
    assert (tmp_path / "math_demo.json").read_bytes() == (DATA / "math_demo.json").read_bytes()


def test_math_demo_rows_en_and_zh_with_integer_answers():
    rows = json.loads((DATA / "math_demo.json").read_text(encoding="utf-8"))
    assert len(rows) == 300
    assert all(set(r) == {"instruction", "input", "output", "answer"} for r in rows)
    assert all(re.fullmatch(r"-?\d+", r["answer"]) for r in rows)
    zh = [r for r in rows if re.search(r"[\u4e00-\u9fff]", r["instruction"])]
    assert len(zh) == 150
    assert len({(r["instruction"], r["input"]) for r in rows}) == 300  # no question twice


def test_math_demo_is_registered_with_its_answer_column_and_loads():
    (attr,) = get_dataset_attrs("math_demo", DATA)
    assert (attr.formatting, attr.prompt, attr.query, attr.response) == ("alpaca", "instruction", "input", "output")
    info = json.loads((DATA / "dataset_info.json").read_text(encoding="utf-8"))
    assert info["math_demo"]["columns"]["answer"] == "answer"  # tolerated by the registry until it knows 'answer'
    convs = load_conversations(attr, DATA)
    assert len(convs) == 300
    first = json.loads((DATA / "math_demo.json").read_text(encoding="utf-8"))[0]
    assert [m.role for m in convs[0].messages] == ["user", "assistant"]
    assert convs[0].messages[0].content == first["instruction"] and convs[0].messages[1].content == first["output"]
    assert convs[0].source.endswith("math_demo.json:2")


def test_every_worked_solution_earns_the_accuracy_reward():
    rows = [row for row, _ in read_rows(DATA / "math_demo.json")]
    rewards = AccuracyReward()(
        [r["instruction"] for r in rows], [r["output"] for r in rows], answer=[r["answer"] for r in rows]
    )
    assert rewards == [1.0] * len(rows)
    wrong = AccuracyReward()(["q"], [rows[0]["output"] + " Or maybe 99999."], answer=[rows[0]["answer"]])
    assert wrong == [0.0]
