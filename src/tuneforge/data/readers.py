"""Read dataset files into rows, each with its source ("file:line" or "file:row N") for error messages.

Supported: .json (an array of objects, or one object per line), .jsonl, .csv, .parquet, .arrow (IPC file or
stream, as `datasets.save_to_disk` writes), .txt (each non-empty line is a row {"text": line}). A folder reads
every supported file inside, sorted; a `save_to_disk` folder reads its arrow shards (a DatasetDict: the split).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tuneforge.errors import UserError

SUPPORTED = (".json", ".jsonl", ".csv", ".parquet", ".arrow", ".txt")
Row = tuple[dict, str]


def read_rows(path: Path, split: str = "train") -> list[Row]:
    """All rows of a file or folder, as (row, "file:line") pairs."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, split)
    if not path.is_file():
        raise UserError("dataset file not found", where=str(path), fix="check file_name in dataset_info.json")
    readers = {".json": _read_json, ".jsonl": _read_json, ".csv": _read_csv, ".txt": _read_txt}
    readers.update({".parquet": _read_parquet, ".arrow": _read_arrow})
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise UserError(
            f"unsupported file type '{path.suffix}'", where=str(path), fix=f"use one of {', '.join(SUPPORTED)}"
        )
    rows = reader(path)
    if not rows:
        raise UserError("the file holds no rows", where=str(path), fix="add samples or remove it")
    return rows


def _read_folder(folder: Path, split: str) -> list[Row]:
    if (folder / "dataset_dict.json").is_file():  # DatasetDict.save_to_disk: one sub-folder per split
        if not (folder / split).is_dir():
            found = sorted(p.name for p in folder.iterdir() if p.is_dir())
            raise UserError(f"split '{split}' not found", where=str(folder), fix=f"set split to one of {found}")
        folder = folder / split
    if (folder / "state.json").is_file():  # Dataset.save_to_disk: arrow shards + metadata json files
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        files = [folder / f["filename"] for f in state.get("_data_files", [])]
    else:
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED)
        files = [p for p in files if not p.name.startswith(".")]
    if not files:
        raise UserError("no dataset files in folder", where=str(folder), fix=f"add {', '.join(SUPPORTED)} files")
    return [row for f in files for row in read_rows(f)]


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _read_json(path: Path) -> list[Row]:
    """A JSON array of objects, or JSON lines (in .json or .jsonl, told apart by the first character)."""
    text = path.read_text(encoding="utf-8-sig")
    start = _skip_ws(text, 0)
    if start < len(text) and text[start] == "[":
        return _read_json_array(path, text, start)
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == 1 and not rows:
                _reject_single_document(path, text)
            raise UserError(f"invalid JSON: {exc.msg}", where=f"{path}:{number}", fix="fix the syntax") from exc
        if not isinstance(obj, dict):
            raise UserError(f"each line must be a JSON object, got {type(obj).__name__}", where=f"{path}:{number}")
        rows.append((obj, f"{path}:{number}"))
    return rows


def _reject_single_document(path: Path, text: str) -> None:
    """A file that is one multi-line JSON document but not an array: say what it holds instead."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return  # the caller reports the syntax error
    keys = f" with keys {list(obj)[:5]}" if isinstance(obj, dict) else ""
    raise UserError(
        f"a JSON dataset must be a list of objects (or one object per line), found {type(obj).__name__}{keys}",
        where=f"{path}:1",
        fix="store the samples as [{...}, {...}]",
    )


def _read_json_array(path: Path, text: str, pos: int) -> list[Row]:
    """Decode the array element by element, so each row knows the line where it starts."""
    decoder = json.JSONDecoder()
    rows: list[Row] = []
    line, last = 1, 0
    pos = _skip_ws(text, pos + 1)
    while pos < len(text) and text[pos] != "]":
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise UserError(f"invalid JSON: {exc.msg}", where=f"{path}:{exc.lineno}", fix="fix the syntax") from exc
        line += text.count("\n", last, pos)
        last = pos
        if not isinstance(obj, dict):
            raise UserError(
                f"a JSON dataset must be a list of objects, found a {type(obj).__name__} in the list",
                where=f"{path}:{line}",
                fix="store the samples as [{...}, {...}]",
            )
        rows.append((obj, f"{path}:{line}"))
        pos = _skip_ws(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
        elif pos < len(text) and text[pos] != "]":
            raise UserError("invalid JSON: expecting ',' delimiter", where=f"{path}:{_line(text, pos)}")
    if pos >= len(text):
        raise UserError("invalid JSON: the array is not closed with ']'", where=f"{path}:{_line(text, pos)}")
    if _skip_ws(text, pos + 1) < len(text):
        raise UserError("invalid JSON: extra data after the array", where=f"{path}:{_line(text, pos + 1)}")
    return rows


def _read_csv(path: Path) -> list[Row]:
    csv.field_size_limit(2**31 - 1)  # long texts: the default limit is 128 KiB per cell
    rows: list[Row] = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        try:
            reader.fieldnames  # noqa: B018 -- reads the header, so line_num counts it
        except csv.Error as exc:
            raise UserError(f"invalid CSV header: {exc}", where=f"{path}:1") from exc
        start = reader.line_num + 1
        try:
            for row in reader:
                rows.append((dict(row), f"{path}:{start}"))
                start = reader.line_num + 1
        except csv.Error as exc:
            raise UserError(f"invalid CSV: {exc}", where=f"{path}:{reader.line_num}") from exc
    return rows


def _read_txt(path: Path) -> list[Row]:
    text = path.read_text(encoding="utf-8-sig")
    return [({"text": line}, f"{path}:{n}") for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _table_rows(path: Path, table) -> list[Row]:
    return [(row, f"{path}:row {i}") for i, row in enumerate(table.to_pylist())]


def _read_parquet(path: Path) -> list[Row]:
    import pyarrow as pa  # heavy: only parquet / arrow files need it
    import pyarrow.parquet as pq

    try:
        return _table_rows(path, pq.read_table(path))
    except pa.ArrowException as exc:
        raise UserError(f"cannot read parquet: {exc}", where=str(path)) from exc


def _read_arrow(path: Path) -> list[Row]:
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        try:
            table = pa.ipc.open_file(source).read_all()
        except pa.ArrowInvalid:
            source.seek(0)
            try:
                table = pa.ipc.open_stream(source).read_all()
            except pa.ArrowInvalid as exc:
                raise UserError(f"cannot read Arrow IPC (file or stream): {exc}", where=str(path)) from exc
    return _table_rows(path, table)
