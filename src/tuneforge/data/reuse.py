"""Tokenized data kept for the next run, without `tokenized_path`: as LLaMA-Factory's datasets cache does, a run
whose data, tokenizer, template and data settings are those of an earlier run reads that run's token ids instead of
encoding every row again (a 60,000-row chat set: ~20 s on this CPU, every run). The entry is named by data/cache.py's
fingerprint (the data files' size and mtime, the tokenizer, the template, the data keys, the seed), so a changed
file or setting is a new entry, never a stale one. It lives in TuneForge's cache folder (utils/cache_home.py:
TUNEFORGE_CACHE, else ~/.cache/tuneforge), under `tokenized/`; nothing there is needed, deleting it costs the next
run the encoding. Not kept: a set encoded in under KEEP_AFTER_S (the write would cost about what it saves), rows
with images (their token counts follow the image files, which the fingerprint does not read), a streamed set.
`overwrite_cache: true` encodes again and replaces the entry; an explicit `tokenized_path` is data/cache.py's.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.data.cache import digest, fingerprint, load_tokenized, save_tokenized, stored_fingerprint
from tuneforge.data.vision_conversation import bound_vision
from tuneforge.utils.cache_home import cache_home
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.data_args import DataArguments

logger = get_logger(__name__)

KEEP_AFTER_S = 2.0  # encodings quicker than this are not kept


def entry_path(stage: str, args: DataArguments, template, tokenizer, seed: int) -> tuple[Path, dict] | None:
    """(folder, fingerprint) of this data's entry, or None where such data is not kept."""
    if args.streaming or bound_vision(template) is not None:
        return None
    want = fingerprint(stage, args, template, tokenizer, seed)
    return cache_home() / "tokenized" / f"{stage}-{digest(want)}", want


def reused_datasets(stage: str, args: DataArguments, template, tokenizer, seed: int, with_train: bool, build):
    """(train, eval): an earlier run's, where its entry matches; else `build()`, kept when it took KEEP_AFTER_S."""
    found = entry_path(stage, args, template, tokenizer, seed)
    if found is None:
        return build()
    path, want = found
    if not args.overwrite_cache and stored_fingerprint(path) == want:
        try:
            data = load_tokenized(path, args, seed)
            logger.info("reusing the tokenized data of an earlier run (%s; overwrite_cache: true encodes again)", path)
            return data
        except Exception as exc:  # removed or damaged meanwhile: encoded again below
            logger.warning("could not read the kept tokenized data in %s (%s): encoding again", path, exc)
    started = time.perf_counter()
    train, eval_set = build()
    took = time.perf_counter() - started
    if with_train and took >= KEEP_AFTER_S and _first_on_its_node():
        try:
            save_tokenized(path, train, eval_set, want)
        except Exception as exc:  # a full disk, a read-only cache folder: the next run encodes again, this one trains
            logger.warning("could not keep the tokenized data for the next run in %s: %s", path, exc)
    return train, eval_set


def _first_on_its_node() -> bool:
    """Every rank encoded the same rows; one process per machine writes them to that machine's cache folder."""
    return int(os.environ.get("LOCAL_RANK", "0")) == 0
