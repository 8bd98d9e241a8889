"""From dataset names to tokenized train / eval datasets: registry → conversations → encode → mix → split."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tuneforge.config.stages import stage_record
from tuneforge.data.cache import cached_datasets
from tuneforge.data.eval_sets import each_eval_set
from tuneforge.data.formats import load_conversations
from tuneforge.data.parallel import encode_in_workers
from tuneforge.data.pretrain import pack_documents
from tuneforge.data.registry import get_dataset_attrs
from tuneforge.data.reuse import reused_datasets
from tuneforge.data.stage_sets import check_dataset_for_stage, encode_for_stage, encode_sft
from tuneforge.data.streaming import get_streaming_datasets
from tuneforge.errors import UserError
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.data_args import DataArguments

logger = get_logger(__name__)


@dataclass
class EncodedSet:
    name: str
    columns: dict[str, list]
    dropped: Counter


def encode_dataset(name: str, conversations, template, tokenizer, args: DataArguments) -> EncodedSet:
    """Encode every conversation for SFT; samples that cannot teach anything are dropped and counted."""
    return EncodedSet(name, *encode_sft(conversations, template, tokenizer, args))


def _load_encoded(names: str | None, template, tokenizer, args: DataArguments, field: str, stage: str = "sft"):
    sets = []
    for attr in get_dataset_attrs(names, args.dataset_dir):
        check_dataset_for_stage(stage, attr, field)
        conversations = load_conversations(attr, args.dataset_dir, args)
        if (args.preprocessing_num_workers or 1) > 1:  # batches on worker processes (data/parallel.py)
            columns, dropped = encode_in_workers(stage, attr.name, conversations, template, tokenizer, args)
        else:
            columns, dropped = encode_for_stage(stage, conversations, template, tokenizer, args)
        encoded = EncodedSet(attr.name, columns, dropped)
        kept = len(next(iter(encoded.columns.values()), []))
        reasons = ", ".join(f"{n} × {why}" for why, n in encoded.dropped.items())
        if kept == 0:
            raise UserError(
                f"dataset '{attr.name}' is empty after filtering: {len(conversations)} read, all dropped ({reasons})",
                where=field,
                fix="raise cutoff_len or check that the samples have responses",
            )
        if encoded.dropped:
            logger.warning(
                "dataset '%s': kept %d of %d samples; dropped %s", attr.name, kept, len(conversations), reasons
            )
        sets.append(encoded)
    return sets


def _mix(sets: list[EncodedSet], args: DataArguments, seed: int):
    # datasets (and pyarrow under it): imported by the process that builds datasets, not by `import` (start-up time)
    from datasets import Dataset, concatenate_datasets, interleave_datasets

    parts = [Dataset.from_dict(s.columns) for s in sets]
    if len(parts) == 1:
        return parts[0]
    if args.mix_strategy == "concat":
        return concatenate_datasets(parts)
    probs = None
    if args.interleave_probs:
        probs = [float(p) for p in args.interleave_probs.split(",")]
        if len(probs) != len(parts) or abs(sum(probs) - 1) > 1e-6:
            raise UserError(
                f"interleave_probs needs {len(parts)} weights that sum to 1, got {args.interleave_probs}",
                where="interleave_probs",
            )
    strategy = "first_exhausted" if args.mix_strategy == "interleave_under" else "all_exhausted"
    return interleave_datasets(parts, probabilities=probs, seed=seed, stopping_strategy=strategy)


def get_sft_datasets(args: DataArguments, template, tokenizer, seed: int = 42, with_train: bool = True):
    """(train, eval) Hugging Face datasets with input_ids / attention_mask / labels; eval may be None."""
    return get_stage_datasets("sft", args, template, tokenizer, seed, with_train)


def get_stage_datasets(stage: str, args: DataArguments, template, tokenizer, seed: int = 42, with_train: bool = True):
    """(train, eval) datasets for a stage; eval may be None, or {name: dataset} with eval_on_each_dataset (LF's
    per-dataset evaluation: a Trainer given a dict logs eval_<name>_loss for each). Columns per stage:
    sft: input_ids, attention_mask, labels · pt: input_ids, labels, position_ids (packed to cutoff_len blocks) ·
    rm: chosen_ids, rejected_ids · dpo: prompt_ids, chosen_ids, rejected_ids · kto: prompt_ids, completion_ids,
    label · ppo: input_ids (prompts)."""
    build = lambda: _encoded(stage, args, template, tokenizer, seed, with_train)  # noqa: E731
    if args.tokenized_path:  # tokenize once, reuse across runs (data/cache.py; it refuses to build when streaming)
        return cached_datasets(stage, args, template, tokenizer, seed, with_train, build)
    if args.streaming:  # read, convert and encode lazily: flat memory (data/streaming.py)
        return get_streaming_datasets(stage, args, template, tokenizer, seed, with_train)
    return reused_datasets(stage, args, template, tokenizer, seed, with_train, build)  # an earlier run's (reuse.py)


def _encoded(stage: str, args: DataArguments, template, tokenizer, seed: int, with_train: bool):
    train, eval_set = _train_and_eval(stage, args, template, tokenizer, seed, with_train)
    if stage_record(stage).data == "text":  # documents: packed into cutoff_len blocks
        train = _pack(train, args.cutoff_len) if train is not None else None
        eval_set = each_eval_set(eval_set, lambda ds: _pack(ds, args.cutoff_len))
    return train, eval_set


def _pack(dataset, cutoff_len: int):
    from datasets import Dataset

    return Dataset.from_dict(pack_documents(dataset["input_ids"], cutoff_len))


def _train_and_eval(stage: str, args: DataArguments, template, tokenizer, seed: int, with_train: bool):
    train = eval_set = None
    if with_train:
        train = _mix(_load_encoded(args.dataset, template, tokenizer, args, "dataset", stage), args, seed)
    if args.eval_dataset:
        sets = _load_encoded(args.eval_dataset, template, tokenizer, args, "eval_dataset", stage)
        if args.eval_on_each_dataset:  # {name: dataset}: the Trainer evaluates each, logging eval_<name>_loss
            eval_set = {s.name: _mix([s], args, seed) for s in sets}
        else:
            eval_set = _mix(sets, args, seed)
    elif train is not None and args.val_size > 0:
        size = int(args.val_size) if args.val_size >= 1 else args.val_size
        if (isinstance(size, int) and size >= len(train)) or (isinstance(size, float) and int(size * len(train)) < 1):
            raise UserError(
                f"val_size {args.val_size} does not fit a dataset of {len(train)} samples",
                where="val_size",
                fix="use a fraction like 0.1, or a count smaller than the dataset",
            )
        split = train.train_test_split(test_size=size, seed=seed)
        train, eval_set = split["train"], split["test"]
    return train, eval_set
