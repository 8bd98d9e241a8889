"""The Runs table and the loss charts without a browser: short run folders with the full path on hover, escaped;
series named in the page's language."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pytest
import yaml

from tuneforge.jobs.progress import Progress
from tuneforge.webui import i18n
from tuneforge.webui.context import UIContext
from tuneforge.webui.jobs_view import RUN_COLUMNS, RUN_DATATYPES, run_rows
from tuneforge.webui.render import curve_frame

CELL = re.compile(r'<span class="tf-run-dir" title="([^"]*)">([^<]*)</span>')


def make_run(folder: Path) -> Path:
    """A finished run folder as training leaves it: config, a two-step log, train_results.json."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"stage": "sft", "finetuning_type": "lora", "dataset": "toy"}))
    rows = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0, "eval_loss": 1.5}]
    (folder / "trainer_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "train_results.json").write_text("{}")
    return folder


@pytest.fixture
def ui(tmp_path):
    return UIContext(saves_dir=tmp_path / "saves", data_dir="data", cwd=tmp_path)


def dir_cell(row: list) -> tuple[str, str]:
    """(hover title, shown text) of a row's run-folder cell, as the browser reads them."""
    match = CELL.fullmatch(row[RUN_COLUMNS.index("col_dir")])
    assert match, row
    return unescape(match.group(1)), unescape(match.group(2))


def test_run_folders_show_relative_to_the_saves_dir_with_the_full_path_on_hover(ui, tmp_path):
    job_dir = make_run(tmp_path / "saves" / "qwen" / "lora" / "train_1")
    found = make_run(tmp_path / "saves" / "tiny" / 'odd <b>"x"</b> & co')  # no job knows it: found on disk
    outside = make_run(tmp_path / "elsewhere" / "run")  # a job may write outside the saves dir (--allow-dir)
    ui.store.add("train", job_dir, job_dir / "config.yaml", job_dir / "train.log", tmp_path)
    ui.store.add("train", outside, outside / "config.yaml", outside / "train.log", tmp_path)

    headers, rows, choices = run_rows(ui, "en")
    assert headers == [i18n.label(k, "en") for k in RUN_COLUMNS] and len(RUN_DATATYPES) == len(headers)
    assert RUN_DATATYPES[RUN_COLUMNS.index("col_dir")] == "html"
    cells = [dir_cell(row) for row in rows]
    assert cells == [
        (str(outside.resolve()), str(outside.resolve())),  # outside the saves dir: the full path
        (str(job_dir.resolve()), "qwen/lora/train_1"),
        (str(found.resolve()), 'tiny/odd <b>"x"</b> & co'),
    ]
    assert "<b>" not in "".join(row[-1] for row in rows)  # escaped: the browser shows the name, not bold text
    labels = [label for label, _ in choices]
    assert labels == ["#2 " + str(outside.resolve()), "#1 qwen/lora/train_1", 'tiny/odd <b>"x"</b> & co']
    assert [Path(value).resolve() for _, value in choices] == [outside.resolve(), job_dir.resolve(), found.resolve()]


@pytest.mark.parametrize("lang", ["en", "zh", "ru"])
def test_curve_series_are_named_in_the_page_language(lang):
    p = Progress(train_curve=[(1, 2.0), (2, 1.0)], eval_curve=[(2, 1.5)])
    train, eval_ = i18n.label("series_train", lang), i18n.label("series_eval", lang)
    frame = curve_frame({"run": p}, lang)
    assert list(frame.columns) == ["step", "loss", "series"]
    assert list(frame["series"]) == [train, train, eval_]
    several = curve_frame({"a": p, "b": p}, lang)
    assert set(several["series"]) == {f"{n} · {s}" for n in "ab" for s in (train, eval_)}
    assert curve_frame({}, lang).empty
