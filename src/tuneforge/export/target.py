"""Where an export goes: refuse a folder that holds something else, write beside it, then swap it in at once."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tuneforge.errors import UserError

MARKER = "tuneforge_export.json"  # written last into every export: marks a folder as a finished TuneForge export


def check_export_dir(export_dir: str | None, overwrite: bool, where: str = "export_dir") -> Path:
    """The export folder, after checking it may be written: missing, empty, a previous export, or overwrite."""
    if not export_dir:
        raise UserError("export_dir is required", where=where, fix="set export_dir: a folder for the exported model")
    path = Path(export_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{export_dir} is a file", where=where, fix="choose a folder path")
    if not path.exists() or not any(path.iterdir()) or (path / MARKER).is_file() or overwrite:
        return path
    raise UserError(
        f"{export_dir} already holds other files (not a TuneForge export)",
        where=where,
        fix="choose a new or empty export_dir, or set export_overwrite: true to replace it",
    )


@contextmanager
def staged_folder(path: Path, info: dict) -> Iterator[Path]:
    """A temporary folder beside `path`; on success it replaces `path` (with the marker written last), on failure
    it is removed and `path` stays as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        (tmp / MARKER).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{tmp.name.rsplit('-', 1)[-1]}")
            path.rename(old)
        try:
            tmp.rename(path)
        except BaseException:
            if old is not None:
                old.rename(path)  # put the previous export back
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
