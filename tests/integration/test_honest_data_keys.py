"""Issue 16's honest config: eval_on_each_dataset evaluates each eval dataset on its own (eval_<name>_loss, as
LLaMA-Factory logs it), ignore_pad_token_for_loss: false trains SFT on the padding (LF's label_pad_token_id), and
print_param_status prints every parameter at load (LF's line format). Where a key cannot act, it stops the run."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tuneforge.config import load_config
from tuneforge.data.sft import IGNORE_INDEX
from tuneforge.errors import UserError
from tuneforge.train.run import run_training

SECOND_ROWS = [
    {"instruction": "Count to three.", "input": "", "output": "One, two, three."},
    {"instruction": "Say hello.", "input": "", "output": "Hello!"},
    {"instruction": "What colour is the sky?", "input": "", "output": "The sky is blue."},
]


@pytest.fixture
def two_eval_sets(data_dir):
    (data_dir / "second.json").write_text(json.dumps(SECOND_ROWS), encoding="utf-8")
    info = json.loads((data_dir / "dataset_info.json").read_text(encoding="utf-8"))
    info["second"] = {"file_name": "second.json"}
    (data_dir / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return data_dir


def test_eval_on_each_dataset_logs_each_sets_loss(train_overrides, two_eval_sets, tmp_path):
    """Each set's eval_<name>_loss is exactly the eval_loss of a run that evaluates that set alone."""
    keys = {"max_steps": 2, "eval_steps": 2}
    each = run_training(
        load_config(
            None,
            train_overrides(
                "lora", eval_dataset="toy,second", eval_on_each_dataset=True, **keys, output_dir=str(tmp_path / "a")
            ),
        )
    )
    metrics = json.loads((each / "eval_results.json").read_text(encoding="utf-8"))
    assert {"eval_toy_loss", "eval_second_loss"} <= set(metrics) and "eval_loss" not in metrics
    alone = run_training(
        load_config(None, train_overrides("lora", eval_dataset="second", **keys, output_dir=str(tmp_path / "b")))
    )
    second = json.loads((alone / "eval_results.json").read_text(encoding="utf-8"))
    assert metrics["eval_second_loss"] == pytest.approx(second["eval_loss"], rel=1e-5)
    assert metrics["eval_toy_loss"] != pytest.approx(metrics["eval_second_loss"])


def test_eval_on_each_dataset_keeps_its_sets_apart_through_packing_and_the_cache(
    train_overrides, two_eval_sets, tiny_tokenizer, tmp_path
):
    from tuneforge.data.loader import get_stage_datasets
    from tuneforge.data.packing import pack_sft_sets
    from tuneforge.data.template import get_template

    template = get_template("qwen", tiny_tokenizer)
    keys = {"eval_dataset": "toy,second", "eval_on_each_dataset": True, "tokenized_path": str(tmp_path / "tok")}
    args = load_config(None, train_overrides("lora", **keys)).data
    _, built = get_stage_datasets("sft", args, template, tiny_tokenizer)
    _, cached = get_stage_datasets("sft", args, template, tiny_tokenizer)  # read back from tokenized_path
    for eval_set in (built, cached):
        assert list(eval_set) == ["toy", "second"] and [len(d) for d in eval_set.values()] == [8, 3]
    assert cached["second"]["input_ids"] == built["second"]["input_ids"]
    _, packed = pack_sft_sets(load_config(None, train_overrides("lora", packing=True, **keys)).data, None, built)
    assert list(packed) == ["toy", "second"]
    for name, rows in packed.items():  # each set packed alone: the same tokens, never another set's
        ids = sorted(t for row in rows["input_ids"] for t in row)
        assert ids == sorted(t for row in built[name]["input_ids"] for t in row), name
    _, pt_sets = get_stage_datasets("pt", dataclasses.replace(args, tokenized_path=None), template, tiny_tokenizer)
    assert list(pt_sets) == ["toy", "second"] and "position_ids" in pt_sets["second"].column_names
    streamed = dataclasses.replace(args, tokenized_path=None, streaming=True)
    _, streams = get_stage_datasets("sft", streamed, template, tiny_tokenizer)
    assert [[row["input_ids"] for row in streams[name]] for name in ("toy", "second")] == [
        built["toy"]["input_ids"],
        built["second"]["input_ids"],
    ]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"val_size": 0.25}, "this run has no eval_dataset"),
        ({"eval_dataset": "toy", "early_stopping_steps": 2}, "metric_for_best_model: eval_toy_loss"),
        ({"eval_dataset": "toy", "load_best_model_at_end": True}, "there is no eval_loss to compare"),
    ],
)
def test_eval_on_each_dataset_refuses_what_it_cannot_do(train_overrides, extra, fragment):
    with pytest.raises(UserError, match=fragment) as caught:
        load_config(None, train_overrides("lora", eval_on_each_dataset=True, **extra))
    assert "eval_on_each_dataset" in caught.value.where


def test_ignore_pad_token_for_loss_false_labels_the_padding_with_the_pad_id(train_overrides, tiny_tokenizer):
    from tuneforge.data.collate import sft_collator

    rows = [{"input_ids": [5, 6, 7], "labels": [IGNORE_INDEX, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    pad = tiny_tokenizer.pad_token_id
    default = sft_collator(tiny_tokenizer, load_config(None, train_overrides("lora")).data, "sdpa", use_cpu=True)
    assert default(rows)["labels"].tolist() == [[IGNORE_INDEX, 6, 7], [8, IGNORE_INDEX, IGNORE_INDEX]]
    data = load_config(None, train_overrides("lora", ignore_pad_token_for_loss=False)).data
    batch = sft_collator(tiny_tokenizer, data, "sdpa", use_cpu=True)(rows)
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 6, 7], [8, pad, pad]]
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, pad, pad]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_ignore_pad_token_for_loss_false_counts_the_padding_in_the_loss(train_overrides, tiny_model_dir):
    """The loss of a batch with padding changes, and equals the mean over the real labels plus the padding."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuneforge.data.collate import sft_collator

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    rows = [{"input_ids": [5, 6, 7, 9], "labels": [5, 6, 7, 9]}, {"input_ids": [8, 4], "labels": [8, 4]}]
    losses = {}
    for ignore in (True, False):
        data = load_config(None, train_overrides("lora", ignore_pad_token_for_loss=ignore)).data
        batch = sft_collator(tokenizer, data, "sdpa", use_cpu=True)(rows)
        with torch.no_grad():
            out = model(**batch)
        losses[ignore] = out.loss.item()
        logits = out.logits[:, :-1].float()
        targets = batch["labels"][:, 1:]
        keep = targets != IGNORE_INDEX
        expected = torch.nn.functional.cross_entropy(logits[keep], targets[keep]).item()
        assert losses[ignore] == pytest.approx(expected, rel=1e-4)
        assert int(keep.sum()) == (3 + 1 if ignore else 3 + 3)  # the padded row trains on its 2 pad labels too
    assert losses[True] != pytest.approx(losses[False])


@pytest.mark.parametrize("stage", ["dpo", "kto", "pt", "rm"])
def test_ignore_pad_token_for_loss_false_is_refused_outside_sft(train_overrides, stage):
    with pytest.raises(UserError, match="labels the padding of SFT batches") as caught:
        load_config(None, train_overrides("lora", stage=stage, ignore_pad_token_for_loss=False))
    assert "ignore_pad_token_for_loss" in caught.value.where


def test_print_param_status_prints_every_parameter_at_load(train_overrides, capsys):
    from tuneforge.train.common import load_tokenizer_and_template, load_trainable_model

    cfg = load_config(None, train_overrides("lora", print_param_status=True))
    tokenizer, _ = load_tokenizer_and_template(cfg)
    capsys.readouterr()
    model = load_trainable_model(cfg, tokenizer)
    lines = capsys.readouterr().out.splitlines()
    params = list(model.named_parameters())
    assert lines == [
        f"name: {n}, dtype: {p.dtype}, device: {p.device}, trainable: {p.requires_grad}" for n, p in params
    ]
    assert any("lora_A" in line and line.endswith("trainable: True") for line in lines)
    assert any("embed_tokens" in line and line.endswith("trainable: False") for line in lines)
    load_trainable_model(load_config(None, train_overrides("lora")), tokenizer)
    assert capsys.readouterr().out == ""  # off by default


def test_print_param_status_prints_the_chat_models_parameters_too(tiny_model_dir, capsys):
    from tuneforge.chat.engine import HuggingFaceEngine

    cfg = load_config(None, {"model_name_or_path": str(tiny_model_dir), "print_param_status": True})
    engine = HuggingFaceEngine(cfg)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"name: {n}, dtype: {p.dtype}, device: {p.device}, trainable: {p.requires_grad}"
        for n, p in engine.model.named_parameters()
    ]
    assert any("embed_tokens" in line for line in lines)
