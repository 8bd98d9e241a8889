"""Local multiple-choice task folders (the layout of LLaMA-Factory's evaluation/mmlu), read with clear errors.

    <task_dir>/<task>/mapping.json          {"<subject>": {"name": "...", "category": "..."}, ...}
    <task_dir>/<task>/<subject>_dev.csv     worked examples for n-shot prompts
    <task_dir>/<task>/<subject>_test.csv    the questions that are scored (any other split name works too)

Each CSV has the header `question,A,B,C,D,answer` (answer is one of A-D). Header-less files with those six
columns in that order (the original MMLU csv files) are read too. See docs/evaluation.md.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from tuneforge.errors import UserError

CHOICES = ("A", "B", "C", "D")
COLUMNS = ("question", *CHOICES, "answer")
MAPPING_FILE = "mapping.json"
DEFAULT_SPLIT = "test"


@dataclass
class Question:
    question: str
    choices: tuple[str, ...]
    answer: str  # one of CHOICES
    where: str  # file:line


@dataclass
class Subject:
    key: str  # file prefix: <key>_test.csv
    name: str  # shown in prompts ("high school physics")
    category: str
    splits: dict[str, list[Question]] = field(default_factory=dict)


@dataclass
class Task:
    name: str
    path: Path
    split: str
    subjects: list[Subject]

    @property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(s.category for s in self.subjects))


def available_tasks(task_dir: str | Path) -> list[str]:
    root = Path(task_dir)
    return sorted(p.name for p in root.iterdir() if (p / MAPPING_FILE).is_file()) if root.is_dir() else []


def resolve_task(task: str | None, task_dir: str | Path) -> tuple[Path, str]:
    """`sample` → (task_dir/sample, "test"); `sample_dev` → (task_dir/sample, "dev"); `mmlu_test` as in LF."""
    root = Path(task_dir)
    if not task:
        raise UserError("no task given", where="task", fix=_known_fix(root))
    if not root.is_dir():
        raise UserError(
            "task folder not found", where=f"task_dir ({task_dir})", fix="set task_dir to the folder holding tasks"
        )
    if (root / task).is_dir():
        return root / task, DEFAULT_SPLIT
    if "_" in task:
        name, split = task.rsplit("_", 1)
        if (root / name).is_dir():
            return root / name, split
    raise UserError(f"no task '{task}' in {root}", where="task", fix=_known_fix(root))


def _known_fix(root: Path) -> str:
    known = available_tasks(root)
    return f"known tasks: {', '.join(known)}" if known else f"put a task folder (with {MAPPING_FILE}) into {root}"


def load_task(task: str | None, task_dir: str | Path, n_shot: int = 0, split: str | None = None) -> Task:
    """Read and check the whole task before any model is loaded: mapping.json, the split and (n_shot > 0) dev."""
    path, named_split = resolve_task(task, task_dir)
    split = split or named_split
    subjects = read_mapping(path / MAPPING_FILE)
    for subject in subjects:
        subject.splits[split] = read_split(path / f"{subject.key}_{split}.csv")
        if n_shot > 0 and split != "dev":
            subject.splits["dev"] = read_split(path / f"{subject.key}_dev.csv")
    return Task(name=path.name, path=path, split=split, subjects=subjects)


def read_mapping(file: Path) -> list[Subject]:
    if not file.is_file():
        raise UserError(
            f"{MAPPING_FILE} not found",
            where=str(file),
            fix='add it: {"<subject>": {"name": "<shown name>", "category": "<category>"}, ...}',
        )
    try:
        data = json.loads(file.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON: {exc.msg}", where=f"{file}:{exc.lineno}", fix="fix the syntax") from exc
    if not isinstance(data, dict) or not data:
        raise UserError(
            "must hold a non-empty object of subjects",
            where=str(file),
            fix='write {"<subject>": {"name": "...", "category": "..."}}',
        )
    subjects = []
    for key, entry in data.items():
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("name", "category")):
            raise UserError(
                f"subject '{key}' needs string fields 'name' and 'category'",
                where=str(file),
                fix=f'write "{key}": {{"name": "{key.replace("_", " ")}", "category": "Other"}}',
            )
        subjects.append(Subject(key=key, name=entry["name"], category=entry["category"]))
    return subjects


def read_split(file: Path) -> list[Question]:
    if not file.is_file():
        known = sorted(p.name for p in file.parent.glob("*.csv"))
        hint = f"files there: {', '.join(known[:8])}" if known else "the folder has no csv files"
        raise UserError("split file not found", where=str(file), fix=f"add it, or check the task and split ({hint})")
    with file.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    if not rows:
        raise UserError("the split is empty", where=str(file), fix=f"add rows with the columns {','.join(COLUMNS)}")
    header = [cell.strip() for cell in rows[0][1]]
    if _is_header(header):
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise UserError(
                f"missing column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)}",
                where=f"{file}:{rows[0][0]}",
                fix=f"the header must name {','.join(COLUMNS)}",
            )
        index = [header.index(c) for c in COLUMNS]
        rows = rows[1:]
    else:
        index = list(range(len(COLUMNS)))  # header-less: question,A,B,C,D,answer in this order
    if not rows:
        raise UserError("the split is empty (a header and no questions)", where=str(file), fix="add questions")
    return [_question(file, line, row, index) for line, row in rows]


def _is_header(cells: list[str]) -> bool:
    return any(c in ("question", "answer") for c in cells)


def _question(file: Path, line: int, row: list[str], index: list[int]) -> Question:
    where = f"{file}:{line}"
    if len(row) <= max(index):
        raise UserError(
            f"the row has {len(row)} cells, expected {len(COLUMNS)}",
            where=where,
            fix=f"give every row {','.join(COLUMNS)} (quote cells that hold commas)",
        )
    question, *choices, answer = (row[i].strip() for i in index)
    answer = answer.upper()
    if answer not in CHOICES:
        raise UserError(f"answer {answer!r} is not one of {', '.join(CHOICES)}", where=where, fix="fix the answer")
    if not question:
        raise UserError("the question is empty", where=where)
    return Question(question=question, choices=tuple(choices), answer=answer, where=where)
