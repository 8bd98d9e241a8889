"""Tokenized data kept for the next run without tokenized_path (data/reuse.py): a second run with the same data
and settings reads the first run's token ids instead of encoding again and trains on the same numbers; a changed
file or setting, `overwrite_cache: true` and a damaged entry encode again; quick encodings are not kept."""

from __future__ import annotations

import json
import os

import pytest

from tuneforge.config import load_config
from tuneforge.data import loader, reuse
from tuneforge.data.cache import META_FILE
from tuneforge.data.loader import get_sft_datasets
from tuneforge.data.template import get_template
from tuneforge.train.run import run_training


@pytest.fixture
def kept(monkeypatch, tmp_path):
    """Every encoding kept (however quick), in a cache folder of this test; counts the encodings."""
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(reuse, "KEEP_AFTER_S", 0.0)
    calls = []
    encode = loader.encode_for_stage

    def counted(*args, **kwargs):
        calls.append(args[0])
        return encode(*args, **kwargs)

    monkeypatch.setattr(loader, "encode_for_stage", counted)
    return calls


def data_args(tiny_model_dir, data_dir, **extra):
    cfg = {"model_name_or_path": str(tiny_model_dir), "dataset": "toy", "dataset_dir": str(data_dir)}
    return load_config(None, {**cfg, "template": "qwen", "cutoff_len": 128, **extra}).data


def samples(dataset) -> list[tuple]:
    return [(tuple(r["input_ids"]), tuple(r["attention_mask"]), tuple(r["labels"])) for r in dataset]


def entries(tmp_path) -> list:
    folder = tmp_path / "cache" / "tokenized"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_a_second_run_reads_the_first_runs_token_ids(kept, tiny_model_dir, tiny_tokenizer, data_dir, tmp_path):
    template = get_template("qwen", tiny_tokenizer)
    first, _ = get_sft_datasets(data_args(tiny_model_dir, data_dir), template, tiny_tokenizer)
    assert len(kept) == 1 and len(entries(tmp_path)) == 1
    second, _ = get_sft_datasets(data_args(tiny_model_dir, data_dir), template, tiny_tokenizer)
    assert len(kept) == 1  # nothing encoded the second time
    assert samples(second) == samples(first) and len(first) > 0
    (entry,) = (tmp_path / "cache" / "tokenized").iterdir()
    assert json.loads((entry / META_FILE).read_text())["fingerprint"]["stage"] == "sft"


def test_a_changed_setting_or_data_file_encodes_again(kept, tiny_model_dir, tiny_tokenizer, data_dir, tmp_path):
    template = get_template("qwen", tiny_tokenizer)
    first, _ = get_sft_datasets(data_args(tiny_model_dir, data_dir), template, tiny_tokenizer)
    shorter, _ = get_sft_datasets(data_args(tiny_model_dir, data_dir, cutoff_len=16), template, tiny_tokenizer)
    assert len(kept) == 2 and max(len(r["input_ids"]) for r in shorter) <= 16

    rows_file = data_dir / "toy.json"
    rows = json.loads(rows_file.read_text(encoding="utf-8"))
    rows[0]["instruction"] = "something new " + rows[0]["instruction"]
    rows_file.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    edited, _ = get_sft_datasets(data_args(tiny_model_dir, data_dir), template, tiny_tokenizer)
    assert len(kept) == 3 and len(entries(tmp_path)) == 3
    assert samples(edited) != samples(first) and len(edited) == len(first)


def test_overwrite_cache_encodes_again_and_replaces_the_entry(kept, tiny_model_dir, tiny_tokenizer, data_dir, tmp_path):
    template = get_template("qwen", tiny_tokenizer)
    get_sft_datasets(data_args(tiny_model_dir, data_dir), template, tiny_tokenizer)
    before = entries(tmp_path)
    get_sft_datasets(data_args(tiny_model_dir, data_dir, overwrite_cache=True), template, tiny_tokenizer)
    assert len(kept) == 2 and entries(tmp_path) == before


def test_a_damaged_entry_is_encoded_again(kept, tiny_model_dir, tiny_tokenizer, data_dir, tmp_path):
    template = get_template("qwen", tiny_tokenizer)
    first, _ = get_sft_datasets(data_args(tiny_model_dir, data_dir), template, tiny_tokenizer)
    for arrow in (tmp_path / "cache" / "tokenized").rglob("*.arrow"):
        arrow.write_bytes(b"not arrow")
    again, _ = get_sft_datasets(data_args(tiny_model_dir, data_dir), template, tiny_tokenizer)
    assert len(kept) == 2 and samples(again) == samples(first)


def test_quick_encodings_and_explicit_tokenized_paths_are_not_kept_here(
    monkeypatch, tiny_model_dir, tiny_tokenizer, data_dir, tmp_path
):
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path / "cache"))
    template = get_template("qwen", tiny_tokenizer)
    get_sft_datasets(data_args(tiny_model_dir, data_dir), template, tiny_tokenizer)  # ~10 ms: under KEEP_AFTER_S
    assert entries(tmp_path) == []
    monkeypatch.setattr(reuse, "KEEP_AFTER_S", 0.0)
    explicit = tmp_path / "tokenized"
    get_sft_datasets(data_args(tiny_model_dir, data_dir, tokenized_path=str(explicit)), template, tiny_tokenizer)
    assert (explicit / META_FILE).is_file() and entries(tmp_path) == []


def test_a_run_on_kept_tokens_trains_on_the_same_numbers(kept, train_overrides, tmp_path):
    def losses(out) -> list[float]:
        rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
        return [r["loss"] for r in rows if r.get("loss") is not None]

    first = run_training(load_config(None, train_overrides("lora", max_steps=4, output_dir=str(tmp_path / "a"))))
    second = run_training(load_config(None, train_overrides("lora", max_steps=4, output_dir=str(tmp_path / "b"))))
    assert kept == ["sft"]  # encoded by the first run only
    assert losses(second) == losses(first) and len(losses(first)) == 4
    assert os.listdir(tmp_path / "cache" / "tokenized")


def test_a_cache_folder_that_cannot_be_written_costs_nothing_but_the_keeping(
    monkeypatch, tiny_model_dir, tiny_tokenizer, data_dir, tmp_path, caplog
):
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("TUNEFORGE_CACHE", str(blocker))  # a file: no folder can be made under it
    monkeypatch.setattr(reuse, "KEEP_AFTER_S", 0.0)
    template = get_template("qwen", tiny_tokenizer)
    train, _ = get_sft_datasets(data_args(tiny_model_dir, data_dir), template, tiny_tokenizer)
    assert len(train) > 0 and blocker.read_text() == ""
    assert "could not keep the tokenized data" in caplog.text
