"""Datasets bigger than memory: streaming (lazy, trains with max_steps), tokenization on worker processes, and a
tokenized cache that later runs reuse (and refuse when stale)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tuneforge.config import load_config
from tuneforge.data.loader import get_sft_datasets
from tuneforge.data.template import get_template
from tuneforge.errors import UserError
from tuneforge.train.run import run_training


@pytest.fixture
def jsonl_dir(data_dir):
    """`toyl`: 64 rows of JSON lines (the identity rows repeated, each numbered so samples differ)."""
    rows = json.loads((data_dir / "toy.json").read_text(encoding="utf-8"))
    with (data_dir / "toy.jsonl").open("w", encoding="utf-8") as f:
        for i in range(64):
            row = dict(rows[i % len(rows)])
            row["input"] = f"{row['input']} #{i}".strip()
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    info = json.loads((data_dir / "dataset_info.json").read_text())
    info["toyl"] = {"file_name": "toy.jsonl"}
    (data_dir / "dataset_info.json").write_text(json.dumps(info))
    return data_dir


def data_args(tiny_model_dir, data_dir, **extra):
    cfg = {
        "model_name_or_path": str(tiny_model_dir),
        "dataset": "toyl",
        "dataset_dir": str(data_dir),
        "template": "qwen",
        "cutoff_len": 48,
        **extra,
    }
    if cfg.get("streaming"):
        cfg.setdefault("max_steps", 10)
    return load_config(None, cfg).data


def samples(dataset) -> list[tuple]:
    return [(tuple(r["input_ids"]), tuple(r["labels"])) for r in dataset]


def curve(out) -> dict[int, float]:
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if r.get("loss") is not None}


def test_streamed_samples_equal_the_loaded_ones(tiny_model_dir, tiny_tokenizer, jsonl_dir):
    from datasets import IterableDataset

    template = get_template("qwen", tiny_tokenizer)
    loaded, _ = get_sft_datasets(data_args(tiny_model_dir, jsonl_dir), template, tiny_tokenizer)
    args = data_args(tiny_model_dir, jsonl_dir, streaming=True, buffer_size=8, preprocessing_batch_size=10)
    streamed, _ = get_sft_datasets(args, template, tiny_tokenizer, seed=3)
    assert isinstance(streamed, IterableDataset)
    got = samples(streamed)
    assert sorted(got) == sorted(samples(loaded))  # the same samples...
    assert got != samples(loaded)  # ...through the shuffle buffer
    again, _ = get_sft_datasets(args, template, tiny_tokenizer, seed=3)
    assert samples(again) == got  # a seeded shuffle is repeatable

    held_out = data_args(tiny_model_dir, jsonl_dir, streaming=True, val_size=5)
    train, evaluation = get_sft_datasets(held_out, template, tiny_tokenizer)
    assert samples(evaluation) == samples(loaded)[:5]  # val_size takes the head of the stream
    assert len(samples(train)) == 59


def test_streaming_reads_lazily(tiny_model_dir, tiny_tokenizer, jsonl_dir):
    """A broken line far down the file is only met when the stream reaches it (nothing reads the file upfront)."""
    with (jsonl_dir / "toy.jsonl").open("a", encoding="utf-8") as f:
        f.write("{not json\n")
    template = get_template("qwen", tiny_tokenizer)
    args = data_args(tiny_model_dir, jsonl_dir, streaming=True, preprocessing_batch_size=8, buffer_size=4)
    train, _ = get_sft_datasets(args, template, tiny_tokenizer)  # the shuffle buffer reads ahead 4 samples
    it = iter(train)
    assert len(next(it)["input_ids"]) > 0
    with pytest.raises(UserError) as err:
        list(it)
    assert err.value.where == f"{jsonl_dir / 'toy.jsonl'}:65"


def test_streaming_rejects_what_needs_the_whole_dataset(tiny_model_dir, tiny_tokenizer, jsonl_dir):
    template = get_template("qwen", tiny_tokenizer)
    with pytest.raises(UserError, match="val_size must be a number of samples"):
        get_sft_datasets(data_args(tiny_model_dir, jsonl_dir, streaming=True, val_size=0.1), template, tiny_tokenizer)
    with pytest.raises(UserError, match="streaming needs max_steps"):
        load_config(None, {"dataset": "toyl", "dataset_dir": str(jsonl_dir), "streaming": True})


@pytest.mark.slow
def test_streaming_sft_trains(train_overrides, jsonl_dir, tmp_path):
    cfg = train_overrides("lora", dataset="toyl", streaming=True, buffer_size=16, max_steps=12, save_steps=6)
    out = run_training(load_config(None, cfg))
    losses = curve(out)
    assert sorted(losses) == list(range(1, 13))
    first, last = sum(losses[s] for s in (1, 2, 3)) / 3, sum(losses[s] for s in (10, 11, 12)) / 3
    assert last < 0.6 * first, losses
    assert (out / "checkpoint-6" / "trainer_state.json").is_file()
    assert (out / "adapter_model.safetensors").is_file()


def test_workers_tokenize_the_same_samples(tiny_model_dir, tiny_tokenizer, jsonl_dir):
    from tuneforge.data.conversation import USER, Conversation, Message
    from tuneforge.data.formats import load_conversations
    from tuneforge.data.loader import encode_dataset
    from tuneforge.data.parallel import encode_in_workers
    from tuneforge.data.registry import get_dataset_attrs

    template = get_template("qwen", tiny_tokenizer)
    one = data_args(tiny_model_dir, jsonl_dir)
    two = dataclasses.replace(one, preprocessing_num_workers=2, preprocessing_batch_size=7)
    serial, _ = get_sft_datasets(one, template, tiny_tokenizer)
    parallel, _ = get_sft_datasets(two, template, tiny_tokenizer)
    assert len(serial) == 64 and samples(parallel) == samples(serial)

    conversations = load_conversations(get_dataset_attrs("toyl", jsonl_dir)[0], jsonl_dir, one)
    conversations.insert(5, Conversation([Message(USER, "a prompt and no answer")]))  # dropped, and counted
    expected = encode_dataset("toyl", conversations, template, tiny_tokenizer, one)
    columns, dropped = encode_in_workers("sft", "toyl", conversations, template, tiny_tokenizer, two)
    assert dropped == expected.dropped == {"no assistant response": 1}
    assert columns == expected.columns


def test_tokenized_path_is_reused_and_stale_caches_are_refused(
    tiny_model_dir, tiny_tokenizer, jsonl_dir, tmp_path, monkeypatch
):
    import tuneforge.data.loader as loader

    template = get_template("qwen", tiny_tokenizer)
    cache = tmp_path / "tokenized"
    args = data_args(tiny_model_dir, jsonl_dir, tokenized_path=str(cache), val_size=4)
    built_train, built_eval = get_sft_datasets(args, template, tiny_tokenizer)
    assert (cache / "tuneforge_tokenized.json").is_file()

    def no_encoding(*a, **k):
        raise AssertionError("the cache should have been used")

    with monkeypatch.context() as m:
        m.setattr(loader, "_train_and_eval", no_encoding)
        train, evaluation = get_sft_datasets(args, template, tiny_tokenizer)
        assert samples(train) == samples(built_train) and samples(evaluation) == samples(built_eval)
        streamed, _ = get_sft_datasets(dataclasses.replace(args, streaming=True), template, tiny_tokenizer)
        assert sorted(samples(streamed)) == sorted(samples(built_train))  # a cache streams from disk too

    with pytest.raises(UserError, match=r"changed: data settings") as err:
        get_sft_datasets(dataclasses.replace(args, cutoff_len=32), template, tiny_tokenizer)
    assert err.value.where == f"tokenized_path ({cache})"
    with pytest.raises(UserError, match=r"changed: template"):
        get_sft_datasets(args, get_template("chatml", tiny_tokenizer), tiny_tokenizer)
    with (jsonl_dir / "toy.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps({"instruction": "One more?", "input": "", "output": "Yes."}) + "\n")
    with pytest.raises(UserError, match=r"changed: data files"):
        get_sft_datasets(args, template, tiny_tokenizer)

    rebuilt, _ = get_sft_datasets(dataclasses.replace(args, overwrite_cache=True), template, tiny_tokenizer)
    assert len(rebuilt) == len(built_train) + 1
    with monkeypatch.context() as m:
        m.setattr(loader, "_train_and_eval", no_encoding)
        assert samples(get_sft_datasets(args, template, tiny_tokenizer)[0]) == samples(rebuilt)


def test_tokenized_path_refuses_a_foreign_folder(tiny_model_dir, tiny_tokenizer, jsonl_dir, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    args = data_args(tiny_model_dir, jsonl_dir, tokenized_path=str(folder))
    with pytest.raises(UserError, match="not a TuneForge tokenized dataset"):
        get_sft_datasets(args, get_template("qwen", tiny_tokenizer), tiny_tokenizer)
    assert (folder / "notes.txt").read_text() == "keep me"
