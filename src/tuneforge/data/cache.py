"""`tokenized_path`: tokenize once, reuse across runs. The folder holds the train / eval datasets
(`save_to_disk`) and a fingerprint of what made them: the tokenizer, the template, the data settings and the data
files (size and modification time). A later run whose fingerprint differs is refused with the parts that changed,
or rebuilt with `overwrite_cache: true`; it never trains on a stale cache silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneforge.data.eval_sets import each_eval_set
from tuneforge.data.registry import get_dataset_attrs
from tuneforge.data.vision_conversation import bound_vision
from tuneforge.errors import UserError
from tuneforge.utils.logging import get_logger, is_main_process

if TYPE_CHECKING:
    from tuneforge.config.data_args import DataArguments

logger = get_logger(__name__)

META_FILE = "tuneforge_tokenized.json"
FORMAT_VERSION = 1
# The data settings that change which token ids a sample gets, or which samples are kept.
DATA_KEYS = (
    "dataset",
    "eval_dataset",
    "eval_on_each_dataset",
    "cutoff_len",
    "train_on_prompt",
    "mask_history",
    "mix_strategy",
    "interleave_probs",
    "max_samples",
    "val_size",
    "packing",
    "neat_packing",
    "tool_format",
    "default_system",
    "enable_thinking",
    "preserve_thinking",
    "identity_name",
    "identity_author",
)


def digest(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _tokenizer_state(tokenizer) -> Any:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        special = tokenizer.special_tokens_map
        return {"class": type(tokenizer).__name__, "tokenizer": backend.to_str(), "special": special}
    return {"class": type(tokenizer).__name__, "vocab": sorted(tokenizer.get_vocab().items())}


def _template_state(template) -> Any:
    if dataclasses.is_dataclass(template):
        return {k: v for k, v in dataclasses.asdict(template).items() if k != "chat_template"} | {
            "jinja": template.to_jinja()
        }
    return template.to_jinja()


def _files_state(args: DataArguments) -> list:
    """Each dataset's registry entry and the size + mtime of its files."""
    out = []
    for names in (args.dataset, args.eval_dataset):
        if not names:
            continue
        for attr in get_dataset_attrs(names, args.dataset_dir):
            entry = {k: v for k, v in dataclasses.asdict(attr).items() if k != "where"}
            path = Path(args.dataset_dir) / (attr.file_name or "")
            files = sorted(path.rglob("*")) if path.is_dir() else [path]
            entry["files"] = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file()]
            out.append(entry)
    return out


def fingerprint(stage: str, args: DataArguments, template, tokenizer, seed: int) -> dict[str, str]:
    """One short hash per part, so a mismatch can say what changed."""
    return {
        "format": str(FORMAT_VERSION),
        "stage": stage,
        "tokenizer": digest(_tokenizer_state(tokenizer)),
        "template": digest(_template_state(template)),
        "data settings": digest({k: getattr(args, k, None) for k in DATA_KEYS}),
        "data files": digest(_files_state(args)),
        "seed": str(seed),
        # a vision model's image settings and processor decide how many tokens each picture takes
        "images": digest(vision.settings()) if (vision := bound_vision(template)) is not None else "none",
    }


def cached_datasets(stage: str, args: DataArguments, template, tokenizer, seed: int, with_train: bool, build):
    """(train, eval) from `args.tokenized_path` when it matches, else from `build()` (then saved there)."""
    path = Path(args.tokenized_path)
    meta = path / META_FILE
    want = fingerprint(stage, args, template, tokenizer, seed)
    if path.exists() and any(path.iterdir()) and not meta.is_file():
        raise UserError(
            "tokenized_path holds files that are not a TuneForge tokenized dataset",
            where=f"tokenized_path ({path})",
            fix="choose an empty or new folder",
        )
    if meta.is_file():
        have = stored_fingerprint(path)
        changed = [k for k in want if have.get(k) != want[k]]
        if not changed:
            return load_tokenized(path, args, seed)
        if not args.overwrite_cache:
            raise UserError(
                f"the tokenized dataset was built from other settings (changed: {', '.join(changed)})",
                where=f"tokenized_path ({path})",
                fix="set overwrite_cache: true to rebuild it, or choose another tokenized_path",
            )
        logger.warning("tokenized_path %s is stale (changed: %s): rebuilding it", path, ", ".join(changed))
    if args.streaming:
        raise UserError(
            "with streaming, tokenized_path can only be read: it does not exist yet",
            where=f"tokenized_path ({path})",
            fix="build it once with streaming: false, then stream from it",
        )
    train, eval_set = build()
    if with_train and is_main_process():  # every rank built the same data; one writes it
        save_tokenized(path, train, eval_set, want)
    return train, eval_set


def stored_fingerprint(path: Path) -> dict:
    """The fingerprint kept with a saved tokenized dataset; {} where there is none, or it does not read."""
    try:
        have = json.loads((path / META_FILE).read_text(encoding="utf-8")).get("fingerprint", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return have if isinstance(have, dict) else {}


def save_tokenized(path: Path, train, eval_set, want: dict) -> None:
    from datasets import DatasetDict  # heavy: only a run with tokenized_path saves or loads datasets

    meta: dict[str, Any] = {"fingerprint": want}
    if isinstance(eval_set, dict):  # eval_on_each_dataset: split names are eval_0, eval_1, ... (any dataset name)
        meta["eval_names"] = list(eval_set)
        evals = {f"eval_{i}": ds for i, ds in enumerate(eval_set.values())}
    else:
        evals = {"eval": eval_set} if eval_set is not None else {}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        DatasetDict({"train": train} | evals).save_to_disk(str(tmp))
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:  # a full disk, Ctrl-C, another run's copy put there meanwhile: nothing left aside
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("saved the tokenized dataset to %s (reused by runs with the same settings)", path)


def load_tokenized(path: Path, args: DataArguments, seed: int):
    from datasets import load_from_disk

    logger.info("loading the tokenized dataset from %s", path)
    data = load_from_disk(str(path))
    names = json.loads((path / META_FILE).read_text(encoding="utf-8")).get("eval_names")
    train = data["train"]
    eval_set = {name: data[f"eval_{i}"] for i, name in enumerate(names)} if names else data.get("eval")
    if args.streaming:  # a cache on disk streams too: Arrow shards read in order, shuffled through the buffer
        train = train.to_iterable_dataset().shuffle(seed=seed, buffer_size=args.buffer_size)
        eval_set = each_eval_set(eval_set, lambda ds: ds.to_iterable_dataset())
    return train, eval_set
