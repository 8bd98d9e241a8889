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
        fix="choose a new or empty export_dir, or set export_overwrite: true to export into it (its other files stay)",
    )


@contextmanager
def staged_folder(path: Path, info: dict) -> Iterator[Path]:
    """A temporary folder beside `path`; on success it replaces `path` (with the marker written last), on failure
    it is removed and `path` stays as it was. What `path` held that no export wrote (the user's own files) moves
    into the new folder: an export replaces only exports."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        written = sorted(child.name for child in tmp.iterdir())
        marker = {**info, "files": written}  # what this export wrote: the next one replaces exactly that
        (tmp / MARKER).write_text(json.dumps(marker, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
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
        if old is not None:  # until this is done the user's files sit, whole, in the hidden .old- folder
            _carry_over(old, path, set(written) | _exported_files(old))
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _exported_files(old: Path) -> set[str]:
    """The names the previous export in `old` wrote, from its marker; an export whose marker has no list (written
    before it had one) wrote all of its folder; no marker: nothing."""
    try:
        marker = json.loads((old / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    files = marker.get("files") if isinstance(marker, dict) else None
    if not isinstance(files, list):
        return {child.name for child in old.iterdir()}
    return {name for name in files if isinstance(name, str)} | {MARKER}


def _carry_over(old: Path, new: Path, replaced: set[str]) -> None:
    """Move into the new export what the old folder holds that no export wrote and the new one does not replace."""
    for child in old.iterdir():
        if child.name not in replaced:
            child.rename(new / child.name)
