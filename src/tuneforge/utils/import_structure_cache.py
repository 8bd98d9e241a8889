"""Keep transformers' lazy import structure on disk, so a process does not rebuild it at every start.

`import transformers` reads the source of its ~3,000 modules (every model's files) with regular expressions to
learn which names each one exports (`transformers.utils.import_utils.define_import_structure`): ~0.35 s of CPU in
every process, before anything of ours runs, and `transformers.processing_utils` and `transformers.models` ask again
for their own folders (~0.6 s together on this machine). The answer depends only on those files. This module
installs an import hook that, once Python has executed `transformers.utils.import_utils`, wraps that function: the
answer for a folder is read from a JSON file named by a fingerprint of the package's files (path, size and mtime of
every `.py`, ~25 ms to take), and computed by transformers itself (then stored) when the fingerprint is new. An
upgraded or edited transformers gets a new fingerprint, so a stale answer is never read. Where the cache folder
cannot be written, or a stored file does not load, transformers computes the answer as before.

Only a process that runs one of our commands installs it (`tuneforge.__main__`), before transformers is imported;
a program that imports tuneforge as a library keeps transformers untouched.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.abc
import importlib.machinery
import json
import os
import sys
from pathlib import Path

from tuneforge.utils.cache_home import cache_home

TARGET = "transformers.utils.import_utils"
FUNCTION = "define_import_structure"


def cache_folder(environ=None) -> Path:
    """Where the stored structures go: under TuneForge's cache folder (utils/cache_home.py)."""
    return cache_home(environ) / "transformers-import-structure"


def package_fingerprint(root: Path) -> str:
    """A hash over the path, size and modification time of every `.py` file under `root`."""
    digest = hashlib.blake2b(digest_size=16)
    folders = [str(root)]
    while folders:
        folder = folders.pop()
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name == "__pycache__":
                    continue
                if entry.is_dir():
                    folders.append(entry.path)
                elif entry.name.endswith(".py"):
                    stat = entry.stat()
                    digest.update(f"{entry.path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def encode(value):
    """transformers' structures (dicts keyed by frozensets of backend names, sets of names) as JSON values."""
    if isinstance(value, frozenset):
        return {"frozenset": [encode(v) for v in sorted(value, key=repr)]}
    if isinstance(value, set):
        return {"set": [encode(v) for v in sorted(value, key=repr)]}
    if isinstance(value, dict):
        return {"dict": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"list": [encode(v) for v in value]}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__}")


def decode(value):
    if isinstance(value, dict):
        (kind, items), *_ = value.items()
        if kind == "frozenset":
            return frozenset(decode(v) for v in items)
        if kind == "set":
            return {decode(v) for v in items}
        if kind == "dict":
            return {decode(k): decode(v) for k, v in items}
        return [decode(v) for v in items]
    return value


class StoredStructures:
    """The answers of one transformers installation: one JSON file of {"module path\\0prefix": structure}. Each
    answer is decoded afresh because transformers adds to the one it is given (`transformers/__init__.py` updates
    the models' structure with its own names): what is stored is what the function returned."""

    def __init__(self, root: Path, folder: Path):
        self.root = root
        self.folder = folder
        self._answers: dict | None = None

    @functools.cached_property
    def path(self) -> Path:
        return self.folder / f"structure-{package_fingerprint(self.root)}.json"

    def answers(self) -> dict:
        if self._answers is None:
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
                self._answers = loaded if isinstance(loaded, dict) else {}
            except Exception:  # absent, unreadable, damaged: transformers computes it again
                self._answers = {}
        return self._answers

    def store(self, key: str, structure) -> None:
        try:
            self.answers()[key] = encode(structure)
        except Exception:  # a structure JSON cannot hold (none seen): this one is computed every time
            return
        aside = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            aside.write_text(json.dumps(self._answers), encoding="utf-8")
            os.replace(aside, self.path)  # a reader finds the old file or the whole new one
        except OSError:  # a folder we may not write: the next process computes it again
            with contextlib.suppress(OSError):
                aside.unlink(missing_ok=True)


def cached(define, stored: StoredStructures):
    """`define` (transformers' function) answered from `stored` where it can be."""

    @functools.lru_cache  # as transformers' own: one object per (path, prefix) within the process
    def define_import_structure(module_path, prefix=None):
        key = f"{os.path.relpath(os.path.realpath(module_path), stored.root)}\0{prefix or ''}"
        answers = stored.answers()
        if key in answers:
            try:
                return decode(answers[key])
            except Exception:  # a damaged entry: computed again below
                pass
        structure = define(module_path, prefix)
        stored.store(key, structure)
        return structure

    define_import_structure.__wrapped__ = define
    return define_import_structure


def patch(module, folder: Path) -> bool:
    """Wrap `module.define_import_structure` (module: transformers.utils.import_utils, just executed)."""
    define = getattr(module, FUNCTION, None)
    if not callable(define) or getattr(define, "_tuneforge", False):
        return False
    root = Path(module.__file__).resolve().parents[1]  # transformers/
    wrapped = cached(define, StoredStructures(root, folder))
    wrapped._tuneforge = True
    setattr(module, FUNCTION, wrapped)
    return True


class _PatchAfterExec(importlib.abc.MetaPathFinder):
    def __init__(self, folder: Path):
        self.folder = folder

    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        sys.meta_path.remove(self)  # once
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module
        folder = self.folder

        def exec_then_patch(module):
            exec_module(module)
            patch(module, folder)

        spec.loader.exec_module = exec_then_patch
        return spec


def install(environ=None) -> bool:
    """Install the hook, before transformers is imported. False where it is too late (already imported)."""
    if TARGET in sys.modules or any(isinstance(f, _PatchAfterExec) for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, _PatchAfterExec(cache_folder(environ)))
    return True
