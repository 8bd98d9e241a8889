"""`streaming: true`: rows read lazily from the files, converted and encoded in batches, shuffled through a
buffer of `buffer_size` samples. Memory stays flat however large the dataset: nothing holds all rows.

JSON lines, .txt, .csv and .parquet stream from disk; a JSON array (or a save_to_disk folder) is read whole
first (a warning says so: convert it to JSON lines). Training on a stream needs `max_steps` (it has no length).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.data.formats import to_conversation
from tuneforge.data.media import media_root
from tuneforge.data.readers import SUPPORTED, Row, read_rows
from tuneforge.data.registry import get_dataset_attrs
from tuneforge.data.stage_sets import check_dataset_for_stage, encode_batch
from tuneforge.errors import UserError
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.data_args import DataArguments
    from tuneforge.data.registry import DatasetAttr

logger = get_logger(__name__)


def iter_rows(path: Path, split: str = "train") -> Iterator[Row]:
    """Rows of a file or folder one at a time, as (row, "file:line")."""
    path = Path(path)
    if path.is_dir():
        if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
            yield from _whole(path, split)
            return
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED)
        if not files:
            raise UserError("no dataset files in folder", where=str(path), fix=f"add {', '.join(SUPPORTED)} files")
        for file in files:
            if not file.name.startswith("."):
                yield from iter_rows(file)
        return
    if not path.is_file():
        raise UserError("dataset file not found", where=str(path), fix="check file_name in dataset_info.json")
    suffix = path.suffix.lower()
    if suffix in (".json", ".jsonl"):
        yield from _json_lines(path)
    elif suffix == ".txt":
        with path.open(encoding="utf-8-sig") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    yield {"text": line.rstrip("\r\n")}, f"{path}:{number}"
    elif suffix == ".csv":
        yield from _csv(path)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq  # heavy: only a parquet file needs it

        index = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1000):
            for row in batch.to_pylist():
                yield row, f"{path}:row {index}"
                index += 1
    else:
        yield from _whole(path, split)


_WARNED: set[str] = set()


def _whole(path: Path, split: str) -> Iterator[Row]:
    if str(path) not in _WARNED:
        _WARNED.add(str(path))
        logger.warning("%s cannot be streamed: it is read whole first (store it as JSON lines for flat memory)", path)
    yield from read_rows(path, split)


def _json_lines(path: Path) -> Iterator[Row]:
    with path.open(encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            text = line.strip()
            if not text:
                continue
            if number == 1 and text.startswith("["):  # a JSON array: no line-by-line reading possible
                yield from _whole(path, "train")
                return
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise UserError(
                    f"invalid JSON: {exc.msg}", where=f"{path}:{number}", fix="one JSON object per line"
                ) from exc
            if not isinstance(obj, dict):
                raise UserError(f"each line must be a JSON object, got {type(obj).__name__}", where=f"{path}:{number}")
            yield obj, f"{path}:{number}"


def _csv(path: Path) -> Iterator[Row]:
    csv.field_size_limit(2**31 - 1)
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        start = 2
        try:
            for row in reader:
                yield dict(row), f"{path}:{start}"
                start = reader.line_num + 1
        except csv.Error as exc:
            raise UserError(f"invalid CSV: {exc}", where=f"{path}:{reader.line_num}") from exc


def iter_conversations(attr: DatasetAttr, args: DataArguments):
    """Conversations of one registered dataset, converted one row at a time; `max_samples` stops early."""
    if not attr.file_name:
        raise UserError(f"dataset '{attr.name}' has no local file_name", where=attr.where, fix="set file_name")
    if attr.num_samples is not None:
        raise UserError(
            f"dataset '{attr.name}': num_samples draws a random subset, which needs the whole dataset",
            where=attr.where,
            fix="remove num_samples (max_samples takes the first N), or set streaming: false",
        )
    values = {"{{name}}": args.identity_name, "{{author}}": args.identity_author}
    for count, (row, source) in enumerate(iter_rows(Path(args.dataset_dir) / attr.file_name, attr.split)):
        if args.max_samples is not None and count >= args.max_samples:
            return
        conv = to_conversation(row, attr, source, media_root(args, args.dataset_dir))
        for m in conv.messages + ([conv.rejected] if conv.rejected else []):
            m.content = _fill(m.content, values)
        conv.system = _fill(conv.system, values)
        yield conv


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def encoded_examples(stage: str, attr: DatasetAttr, template, tokenizer, args: DataArguments, stats: Counter):
    """The encoded samples of one dataset, tokenized `preprocessing_batch_size` conversations at a time."""
    batch: list = []
    conversations = iter_conversations(attr, args)
    while True:
        conv = next(conversations, None)
        if conv is not None:
            batch.append(conv)
        if batch and (conv is None or len(batch) >= args.preprocessing_batch_size):
            columns, dropped = encode_batch(stage, batch, template, tokenizer, args)
            stats.update(dropped)
            batch = []
            size = len(next(iter(columns.values()), []))
            for i in range(size):
                yield {key: values[i] for key, values in columns.items()}
        if conv is None:
            return


def stream_dataset(stage: str, attr: DatasetAttr, template, tokenizer, args: DataArguments, field: str):
    """One dataset as a datasets.IterableDataset; its first batch is encoded now, so an empty one fails here."""
    from datasets import IterableDataset

    stats: Counter = Counter()
    first = next(encoded_examples(stage, attr, template, tokenizer, args, stats), None)
    if first is None:
        reasons = ", ".join(f"{n} × {why}" for why, n in stats.items()) or "no rows"
        raise UserError(
            f"dataset '{attr.name}' yields no samples when streamed ({reasons})",
            where=field,
            fix="raise cutoff_len or check that the samples have responses",
        )
    generate = partial(encoded_examples, stage, attr, template, tokenizer, args, Counter())
    return IterableDataset.from_generator(generate)


def _mix(streams: list, args: DataArguments, seed: int):
    from datasets import concatenate_datasets, interleave_datasets

    if len(streams) == 1:
        return streams[0]
    if args.mix_strategy == "concat":
        return concatenate_datasets(streams)
    probs = [float(p) for p in args.interleave_probs.split(",")] if args.interleave_probs else None
    if probs is not None and (len(probs) != len(streams) or abs(sum(probs) - 1) > 1e-6):
        raise UserError(
            f"interleave_probs needs {len(streams)} weights that sum to 1, got {args.interleave_probs}",
            where="interleave_probs",
        )
    strategy = "first_exhausted" if args.mix_strategy == "interleave_under" else "all_exhausted"
    return interleave_datasets(streams, probabilities=probs, seed=seed, stopping_strategy=strategy)


def get_streaming_datasets(stage: str, args: DataArguments, template, tokenizer, seed: int, with_train: bool):
    """(train, eval) IterableDatasets. Train is shuffled through a `buffer_size` buffer; `val_size` (a count)
    takes the first N samples of the stream for evaluation."""

    def load(names: str | None, field: str, each: bool = False):
        attrs = get_dataset_attrs(names, args.dataset_dir)
        for attr in attrs:
            check_dataset_for_stage(stage, attr, field)
        if each:  # eval_on_each_dataset: {name: stream}, each evaluated on its own
            return {a.name: stream_dataset(stage, a, template, tokenizer, args, field) for a in attrs}
        return _mix([stream_dataset(stage, a, template, tokenizer, args, field) for a in attrs], args, seed)

    if (args.preprocessing_num_workers or 1) > 1:
        logger.warning("preprocessing_num_workers has no effect with streaming: samples are tokenized as they are read")
    train = load(args.dataset, "dataset") if with_train else None
    eval_set = load(args.eval_dataset, "eval_dataset", args.eval_on_each_dataset) if args.eval_dataset else None
    if train is not None and eval_set is None and args.val_size > 0:
        if args.val_size < 1 or args.val_size != int(args.val_size):
            raise UserError(
                f"with streaming, val_size must be a number of samples, got {args.val_size}",
                where="val_size",
                fix="use a count like val_size: 100 (a stream has no length to take a fraction of)",
            )
        eval_set, train = train.take(int(args.val_size)), train.skip(int(args.val_size))
    if train is not None:
        train = train.shuffle(seed=seed, buffer_size=args.buffer_size)
    return train, eval_set
