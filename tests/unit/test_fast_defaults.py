"""The fast defaults: logits only at trained positions (same loss), length-grouped SFT batches, and
`gradient_checkpointing: auto` resolved from the memory estimate."""

from __future__ import annotations

import pytest
import torch

from tuneforge.config import load_config
from tuneforge.data.collate import SftCollator
from tuneforge.train.arguments import build_training_arguments, groups_by_length, resolve_checkpointing

FEATURES = [
    {"input_ids": [5, 6, 7, 8, 9, 10, 11], "labels": [-100, -100, -100, 8, 9, 10, 11]},
    {"input_ids": [12, 13, 14], "labels": [-100, 13, 14]},
    {"input_ids": [15, 16, 17, 18], "labels": [-100, -100, -100, -100]},
]


@pytest.mark.parametrize("flatten", [False, True])
def test_trained_logits_only_gives_the_same_loss_and_gradients(tiny_model_dir, flatten):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    full = SftCollator(0, flatten=flatten)(FEATURES)
    slim = SftCollator(0, flatten=flatten, trained_logits_only=True)(FEATURES)
    trained = sum(1 for f in FEATURES for x in f["labels"][1:] if x != -100)
    out_full, out_slim = model(**full), model(**slim)
    assert out_slim.logits.shape == (trained, model.config.vocab_size)  # no prompt or padding logits
    assert out_full.logits.shape[:2] == full["input_ids"].shape
    torch.testing.assert_close(out_slim.loss, out_full.loss, rtol=1e-5, atol=1e-6)
    grad_full = torch.autograd.grad(out_full.loss, model.model.embed_tokens.weight)[0]
    grad_slim = torch.autograd.grad(out_slim.loss, model.model.embed_tokens.weight)[0]
    torch.testing.assert_close(grad_slim, grad_full, rtol=1e-4, atol=1e-6)


def test_nothing_to_train_leaves_the_batch_alone():
    batch = SftCollator(0, trained_logits_only=True)([FEATURES[2]])
    assert "logits_to_keep" not in batch and "shift_labels" not in batch


def _cfg(tiny_model_dir, **keys):
    base = {"model_name_or_path": str(tiny_model_dir), "template": "qwen", "finetuning_type": "lora"}
    return load_config(None, {**base, **keys})


def test_sft_rm_dpo_group_by_length_unless_packing_or_kept_order(tiny_model_dir, tmp_path):
    cfg = _cfg(tiny_model_dir)
    assert groups_by_length(cfg)
    assert build_training_arguments(cfg, str(tmp_path)).train_sampling_strategy == "group_by_length"
    assert groups_by_length(_cfg(tiny_model_dir, stage="rm")) and groups_by_length(_cfg(tiny_model_dir, stage="dpo"))
    for keys in ({"neat_packing": True}, {"packing": False}, {"disable_shuffling": True}, {"stage": "kto"}):
        assert not groups_by_length(_cfg(tiny_model_dir, **keys)), keys
    chosen = _cfg(tiny_model_dir, train_sampling_strategy="random")
    assert build_training_arguments(chosen, str(tmp_path)).train_sampling_strategy == "random"


def test_preference_pairs_are_batched_by_the_length_they_pad_to():
    from types import SimpleNamespace

    from datasets import Dataset

    from tuneforge.train.sampling import padded_lengths, seed_length_grouped_order

    shapes = [(2, 3, 1), (40, 5, 60), (1, 1, 1), (30, 50, 2), (3, 2, 4), (2, 2, 2), (50, 40, 30), (1, 2, 3)] * 6
    rows = [{"prompt_ids": [1] * p, "chosen_ids": [2] * c, "rejected_ids": [3] * r} for p, c, r in shapes]
    pairs = Dataset.from_list(rows)
    lengths = [p + max(c, r) for p, c, r in shapes]
    assert padded_lengths(pairs) == lengths
    assert padded_lengths(Dataset.from_list([{"chosen_ids": [1, 2], "rejected_ids": [3]}])) == [2]  # rm: no prompt
    assert padded_lengths(Dataset.from_list([{"input_ids": [1]}])) is None  # sft: transformers measures it

    args = SimpleNamespace(
        train_sampling_strategy="group_by_length",
        train_batch_size=2,
        gradient_accumulation_steps=1,
        data_seed=None,
        seed=0,
        world_size=1,
    )
    trainer = SimpleNamespace(train_dataset=pairs, args=args, _get_train_sampler=lambda *a, **k: None)
    seed_length_grouped_order(trainer)
    sampler = trainer._get_train_sampler()
    order = list(sampler)

    def padding(indices):  # tokens a batch of 2 pads: twice its longest row minus what the rows hold
        batches = [indices[k : k + 2] for k in range(0, len(indices), 2)]
        return sum(2 * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in batches)

    assert sorted(order) == list(range(len(shapes)))
    steps = [order[k : k + 2] for k in range(0, len(order), 2)]
    step_lengths = [sum(lengths[i] for i in step) for step in steps]
    assert step_lengths[0] == min(step_lengths)  # the shortest step first: the first loss comes soon
    assert lengths[order[2]] == max(lengths)  # the longest second: an out-of-memory shows at step 2
    assert padding(order) * 4 < padding(list(range(len(shapes))))
    assert list(sampler) == order  # seeded: the same order when drawn again (a resume)
    # a step is every process's rows: two processes of batch 2 order by steps of 4, as one process of batch 4 does
    args.world_size = 2
    two = SimpleNamespace(train_dataset=pairs, args=args, _get_train_sampler=lambda *a, **k: None)
    seed_length_grouped_order(two)
    assert two._get_train_sampler().step_rows == 4


def test_gradient_checkpointing_auto(tiny_model_dir, tmp_path, monkeypatch):
    from tuneforge.model import estimate

    cfg = _cfg(tiny_model_dir)
    assert cfg.training.get("gradient_checkpointing", "auto") == "auto"
    assert build_training_arguments(cfg, str(tmp_path)).gradient_checkpointing is False  # a tiny model fits
    assert resolve_checkpointing(cfg, True) is True and resolve_checkpointing(cfg, False) is False
    monkeypatch.setattr(estimate, "available_memory_mib", lambda cuda: 100.0)  # a machine too small for it
    assert resolve_checkpointing(cfg, "auto") is True
    assert estimate.estimate_memory(cfg, cuda=False)["gradient_checkpointing"] is True
    no_local_model = _cfg(tiny_model_dir, model_name_or_path="org/not-downloaded")
    assert resolve_checkpointing(no_local_model, "auto") is False


def test_trained_logits_need_a_forward_that_slices(tiny_model_dir):
    import types

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tuneforge.data.collate import supports_trained_logits

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert supports_trained_logits(model)
    assert supports_trained_logits(get_peft_model(model, LoraConfig(r=2, target_modules="all-linear")))

    def patched_forward(self, input_ids=None, labels=None, **kwargs):  # a kernel library's replacement forward
        return None

    other = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    other.forward = types.MethodType(patched_forward, other)
    assert not supports_trained_logits(other)
