"""The shapes demo (data/shapes_demo*.json + data/shapes_demo/*.png) is what scripts/make_shapes_demo.py draws: LF's
multimodal sharegpt rows, English + Chinese, one-word answers, eval pictures unlike any training picture."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from PIL import Image

from tuneforge.data.registry import _parse_entry

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
SCRIPT = ROOT / "scripts" / "make_shapes_demo.py"
COLOURS = {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色"}
SHAPES = {"circle": "圆形", "square": "正方形", "triangle": "三角形"}
DIGITS = {"1", "2", "3", "4"}
# LLaMA-Factory 0.9.5's data/dataset_info.json registers mllm_demo so; ours differ in file_name only.
LF_MLLM_DEMO = {
    "formatting": "sharegpt",
    "columns": {"messages": "messages", "images": "images"},
    "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
}


def _rows(name):
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def _pixels_digest(path):
    with Image.open(DATA / path) as picture:
        assert (picture.mode, picture.size) == ("RGB", (64, 64))
        return hashlib.sha256(picture.tobytes()).hexdigest()


def test_committed_files_are_what_the_script_draws(tmp_path):
    check = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert check.returncode == 0, check.stdout + check.stderr
    fresh = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], capture_output=True, cwd=ROOT)
    assert fresh.returncode == 0, fresh.stderr
    for name in ("shapes_demo.json", "shapes_demo_eval.json"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "shapes_demo").iterdir()) == sorted(
        p.name for p in (DATA / "shapes_demo").iterdir()
    )
    # a changed picture is caught
    Image.new("RGB", (64, 64), (0, 0, 0)).save(tmp_path / "shapes_demo" / "train_000.png")
    stale = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert stale.returncode == 1 and "shapes_demo/train_000.png" in stale.stdout


def test_registered_exactly_as_lf_registers_mllm_demo():
    info = json.loads((DATA / "dataset_info.json").read_text(encoding="utf-8"))
    for name in ("shapes_demo", "shapes_demo_eval"):
        assert info[name] == {"file_name": f"{name}.json", **LF_MLLM_DEMO}
        attr = _parse_entry(name, info[name], "dataset_info.json:1")
        assert (attr.formatting, attr.media_columns, attr.images) == ("sharegpt", ("images",), "images")


def test_rows_counts_placeholders_and_languages():
    answers = {**COLOURS, **SHAPES}
    for name, rows_expected, pictures_expected in (("shapes_demo.json", 480, 120), ("shapes_demo_eval.json", 112, 28)):
        rows = _rows(name)
        assert len(rows) == rows_expected
        assert len({row["images"][0] for row in rows}) == pictures_expected
        languages = Counter()
        for row in rows:
            user, assistant = row["messages"]
            assert (user["role"], assistant["role"]) == ("user", "assistant")
            assert set(row) == {"messages", "images"} and len(row["images"]) == 1
            assert user["content"].count("<image>") == len(row["images"]) == 1
            assert user["content"].startswith("<image>") and "<image>" not in assistant["content"]
            assert (DATA / row["images"][0]).is_file()
            chinese = bool(re.search(r"[\u4e00-\u9fff]", user["content"]))
            languages["zh" if chinese else "en"] += 1
            reply = assistant["content"]
            # one word, in the question's language (digits are written alike)
            assert reply in (set(answers.values()) if chinese else set(answers)) | DIGITS, reply
        assert languages["en"] == languages["zh"] == rows_expected // 2


def test_every_picture_is_asked_its_colour_and_name_in_both_languages():
    rows = _rows("shapes_demo.json")
    by_picture = {}
    for row in rows:
        by_picture.setdefault(row["images"][0], {})[row["messages"][0]["content"]] = row["messages"][1]["content"]
    for qa in by_picture.values():
        assert len(qa) == 4
        colour = qa.get("<image>What colour is the shape?") or qa["<image>What colour is the digit?"]
        zh_colour = qa.get("<image>图中形状是什么颜色？") or qa["<image>图中数字是什么颜色？"]
        assert COLOURS[colour] == zh_colour
        if "<image>What shape is this?" in qa:
            assert SHAPES[qa["<image>What shape is this?"]] == qa["<image>图中是什么形状？"]
        else:
            assert qa["<image>Which digit is drawn?"] == qa["<image>图中画的是哪个数字？"] in DIGITS
    # balanced classes: every colour x shape 6 times, every colour x digit 3 times
    kinds = Counter(
        (
            qa.get("<image>What colour is the shape?") or qa["<image>What colour is the digit?"],
            qa.get("<image>What shape is this?") or qa["<image>Which digit is drawn?"],
        )
        for qa in by_picture.values()
    )
    assert {k: v for k, v in kinds.items() if k[1] in SHAPES} == {(c, s): 6 for c in COLOURS for s in SHAPES}
    assert {k: v for k, v in kinds.items() if k[1] in DIGITS} == {(c, d): 3 for c in COLOURS for d in DIGITS}


def test_eval_pictures_are_not_training_pictures():
    train = {row["images"][0] for row in _rows("shapes_demo.json")}
    held_out = {row["images"][0] for row in _rows("shapes_demo_eval.json")}
    assert not train & held_out
    train_pixels = {_pixels_digest(path) for path in train}
    assert len(train_pixels) == len(train)  # no two training pictures alike either
    assert not train_pixels & {_pixels_digest(path) for path in held_out}
    assert {p.name for p in (DATA / "shapes_demo").iterdir()} == {Path(p).name for p in train | held_out}


def test_pictures_show_the_answer_colour():
    """The painted pixels are the answer's colour: the questions are answerable from the picture alone."""
    rgb = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 200, 30)}
    for row in _rows("shapes_demo_eval.json"):
        question, answer = row["messages"][0]["content"], row["messages"][1]["content"]
        if "colour" not in question:
            continue
        with Image.open(DATA / row["images"][0]) as picture:
            colours = Counter(picture.getdata())
        assert set(colours) <= {rgb[answer], (255, 255, 255), (236, 236, 236)}
        assert colours[rgb[answer]] >= 40


def test_demo_folder_is_small():
    total = sum(p.stat().st_size for p in (DATA / "shapes_demo").iterdir())
    total += sum((DATA / name).stat().st_size for name in ("shapes_demo.json", "shapes_demo_eval.json"))
    assert total < 300_000
