"""The folders the Web UI page may touch: it writes only under the saves dir (and --allow-dir folders) and reads only
those plus the data, models and task folders. Every path the page sends is resolved (symlinks, `..`, relative to the
server's working directory) and checked here before anything is read, written or queued.

A model or adapter value that is not a local path and looks like a hub id (`org/name`) is let through: it names a
download into the Hugging Face cache, not a file on this machine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneforge.config.eval_args import EvaluationArguments
from tuneforge.config.loader import GROUPS, TRAINING
from tuneforge.errors import UserError

# Config keys that name a path, by what the job does with it (every path-valued key of the config schema).
WRITE_KEYS = ("output_dir", "export_dir", "save_dir", "tokenized_path", "cache_dir", "logging_dir") + (
    "offload_folder",
    "profiler_output_dir",
    "swanlab_logdir",
)
READ_KEYS = ("dataset_dir", "task_dir", "export_quantization_dataset", "resume_from_checkpoint") + (
    "new_special_tokens_config",
    "media_dir",
    "hyper_parallel_args",
    "kt_weight_path",
    "kt_expert_checkpoint_path",
)
SUBFOLDER_KEYS = ("adapter_folder",)  # a folder inside another path key's folder: relative, never climbing out
MODEL_KEYS = ("model_name_or_path", "ref_model", "reward_model", "generation_config")  # a folder or a hub id
MODEL_LIST_KEYS = ("adapter_name_or_path", "ref_model_adapters", "reward_model_adapters")  # comma separated
FILE_OR_INLINE_KEYS = ("deepspeed", "fsdp_config", "accelerator_config")  # a JSON file path, or an inline mapping
GROUP_NAMES = (*GROUPS, TRAINING)  # nested / prefixed keys

HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")
ALLOW_FIX = "or start the Web UI with --allow-dir DIR"
TASK_DIR = EvaluationArguments().task_dir  # where benchmarks are read from unless task_dir says otherwise


def _resolve(base: Path, value: str | os.PathLike) -> Path:
    path = Path(value)
    return (path if path.is_absolute() else base / path).resolve()


def _name(folder: str | Path) -> str:
    return str(folder).rstrip("/") or "/"


def _inside(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def looks_like_hub_id(value: str) -> bool:
    """`org/name` or `name`: letters, digits, `._-`, at most one `/`, no leading `/`, `.` or `~`, no `..`."""
    return bool(HUB_ID.fullmatch(value)) and ".." not in value


@dataclass(frozen=True)
class PathPolicy:
    """Where the page may write (`write_roots`) and read (`read_roots`, a superset), as resolved folders."""

    write_roots: tuple[Path, ...]
    read_roots: tuple[Path, ...]
    base: Path = field(default_factory=Path.cwd)  # relative paths are relative to the server's working directory
    write_names: tuple[str, ...] = ()  # the folders as the user named them, for messages
    read_names: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        saves_dir: str | Path = "saves",
        data_dir: str | Path = "data",
        models_dirs: Iterable[str | Path] = ("models",),
        allow_dirs: Iterable[str | Path] = (),
        task_dirs: Iterable[str | Path] = (TASK_DIR,),
        base: str | Path | None = None,
    ) -> PathPolicy:
        """Writes: saves + allowed; reads: those + data + models + the benchmark task folder (the schema's default)."""
        base = Path(base or Path.cwd()).resolve()
        writes = [_name(saves_dir), *(_name(d) for d in allow_dirs)]
        reads = [*writes, _name(data_dir), *(_name(d) for d in models_dirs), *(_name(d) for d in task_dirs)]
        writes, reads = list(dict.fromkeys(writes)), list(dict.fromkeys(reads))
        return cls(
            write_roots=tuple(_resolve(base, d) for d in writes),
            read_roots=tuple(_resolve(base, d) for d in reads),
            base=base,
            write_names=tuple(writes),
            read_names=tuple(reads),
        )

    def resolve(self, value: str | os.PathLike) -> Path:
        return _resolve(self.base, value)

    def _candidates(self, value: str) -> list[Path]:
        """What a value may mean to the job: the path itself and, for `~/...`, the home folder's path too."""
        found = [self.resolve(value)]
        if value.startswith("~"):
            found.append(Path(value).expanduser().resolve())
        return found

    def may_write(self, value: str | os.PathLike) -> bool:
        return all(_inside(p, self.write_roots) for p in self._candidates(str(value)))

    def may_read(self, value: str | os.PathLike) -> bool:
        return all(_inside(p, self.read_roots) for p in self._candidates(str(value)))

    def confine_write(self, value: Any, field_name: str) -> Path | None:
        """The resolved folder or file the page asks to write; UserError when it is outside the write roots."""
        if value is None or str(value).strip() == "":
            return None
        text = str(value).strip()
        if not self.may_write(text):
            raise UserError(
                f"{text} is outside the folders this Web UI may write ({', '.join(self.write_names)})",
                where=field_name,
                fix=f"choose a path under {self.write_names[0]}/, {ALLOW_FIX}",
            )
        return self.resolve(text)

    def confine_read(self, value: Any, field_name: str, hub_ok: bool = False) -> Path | None:
        """The resolved path the page asks to read; with `hub_ok`, a hub id that is no local path passes as it is."""
        if value is None or str(value).strip() == "":
            return None
        text = str(value).strip()
        if self.may_read(text):
            return self.resolve(text)
        if hub_ok and looks_like_hub_id(text) and not self.resolve(text).exists():
            return None  # downloaded into the hub cache, not a file anyone named
        fix = "choose a path under one of those folders" + (", or a hub id (org/name)" if hub_ok else "")
        raise UserError(
            f"{text} is outside the folders this Web UI may read ({', '.join(self.read_names)})",
            where=field_name,
            fix=f"{fix}, {ALLOW_FIX}",
        )


def config_entries(cfg: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every (key, value) of a config, with `model:` mappings and `model.key` prefixes unfolded as the config loader
    reads them. All of them, not only the one the loader keeps when a key is given twice: each must be allowed."""
    entries: list[tuple[str, Any]] = []
    for key, value in cfg.items():
        key = str(key)
        if key in GROUP_NAMES and isinstance(value, dict):
            entries.extend((str(k), v) for k, v in value.items())
        elif "." in key and key.split(".", 1)[0] in GROUP_NAMES:
            entries.append((key.split(".", 1)[1], value))
        else:
            entries.append((key, value))
    return entries


def _path_value(value: Any) -> str | None:
    """The path a config value names; None for unset, flags (resume_from_checkpoint: true) and inline mappings."""
    if value is None or isinstance(value, (bool, dict, list, tuple)):
        return None
    return str(value)


def _items(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value or "").split(",") if v.strip()]


def confine_config(cfg: dict[str, Any], policy: PathPolicy) -> None:
    """Refuse (UserError naming the key) a config that names a path outside the folders the page may touch.
    Called before a config is validated, written, queued or loaded; the first offending key is reported."""
    entries = config_entries(cfg)
    for key, value in entries:
        if key in WRITE_KEYS:
            policy.confine_write(_path_value(value), key)
        elif key in READ_KEYS + FILE_OR_INLINE_KEYS:  # deepspeed & co.: a JSON file path, or inline settings
            policy.confine_read(_path_value(value), key)
        elif key in MODEL_KEYS:
            policy.confine_read(_path_value(value), key, hub_ok=True)
        elif key in MODEL_LIST_KEYS:
            for item in _items(value):
                policy.confine_read(item, key, hub_ok=True)
        elif key in SUBFOLDER_KEYS and value is not None:
            inner = Path(str(value))
            if inner.is_absolute() or ".." in inner.parts:
                raise UserError(
                    f"{key} must be a folder inside the adapter's folder", where=key, fix="give a relative name"
                )
    task_dirs = [_path_value(v) or TASK_DIR for k, v in entries if k == "task_dir"] or [TASK_DIR]
    for key, value in entries:
        if key == "task" and value:  # benchmark folders under task_dir: a name must not climb out of it
            for name in _items(value):
                for task_dir in task_dirs:
                    policy.confine_read(str(Path(task_dir) / name), "task")
