"""model/long_step_checkpointing.py: a batch over the threshold runs its layers checkpointed (less kept for the
backward, the same loss and gradients), any other keeps its activations; SFT takes it where `auto` resolved off."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model

from small_models import loss_grads_saved, small_causal_lm
from tuneforge.config import load_config
from tuneforge.model.long_step_checkpointing import checkpoint_long_steps, layers_to_checkpoint, typical_step_tokens
from tuneforge.train.arguments import build_training_arguments
from tuneforge.train.sft import long_step_checkpointing_applies

THRESHOLD = 15  # tokens: a 1 x 10 batch is short, a 2 x 10 one checkpoints one layer of two, a 4 x 10 one both


def _batch(rows: int) -> dict:
    torch.manual_seed(1)
    ids = torch.randint(3, 96, (rows, 10))
    return {"input_ids": ids, "labels": ids}


def _model(lora: bool):
    model = small_causal_lm("qwen2")
    if lora:
        torch.manual_seed(2)  # lora_B not zero: every LoRA gradient is non-trivial
        config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
        model = get_peft_model(model, config)
    return model


def _assert_same(got, want):
    torch.testing.assert_close(got[0], want[0], atol=1e-6, rtol=1e-6)
    assert got[1].keys() == want[1].keys()
    for name, grad in want[1].items():
        torch.testing.assert_close(got[1][name], grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_only_a_long_batch_is_recomputed_and_gradients_stay_the_same(lora):
    plain, switched = _model(lora), _model(lora)
    assert checkpoint_long_steps(switched, THRESHOLD) == 2  # the two decoder layers
    layers = [m for m in switched.modules() if type(m).__name__ == "Qwen2DecoderLayer"]

    short_want, short_got = loss_grads_saved(plain, _batch(1)), loss_grads_saved(switched, _batch(1))
    assert not any(layer.gradient_checkpointing for layer in layers)
    _assert_same(short_got, short_want)
    assert short_got[2] == short_want[2]  # every activation kept, as without the switch

    half_want, half_got = loss_grads_saved(plain, _batch(2)), loss_grads_saved(switched, _batch(2))
    assert [layer.gradient_checkpointing for layer in layers] == [False, True]  # the top one
    _assert_same(half_got, half_want)

    long_want, long_got = loss_grads_saved(plain, _batch(4)), loss_grads_saved(switched, _batch(4))
    assert all(layer.gradient_checkpointing for layer in layers)
    _assert_same(long_got, long_want)
    # the layers' activations recomputed in the backward pass: one layer's fewer kept, then both layers'
    assert long_got[2] < 0.5 * long_want[2]
    assert long_got[2] / long_want[2] < half_got[2] / half_want[2] < 0.8

    loss_grads_saved(switched, _batch(1))  # and off again for the next short batch
    assert not any(layer.gradient_checkpointing for layer in layers)


def test_with_the_bottom_layer_frozen_the_top_one_is_recomputed():
    plain, switched = _model(lora=False), _model(lora=False)
    for model in (plain, switched):  # freeze: only the top layer trains, the bottom one keeps nothing anyway
        model.requires_grad_(False)
        model.model.layers[1].requires_grad_(True)
    checkpoint_long_steps(switched, THRESHOLD)
    want, got = loss_grads_saved(plain, _batch(2)), loss_grads_saved(switched, _batch(2))
    _assert_same(got, want)
    assert got[2] < 0.5 * want[2]


def test_a_long_batch_checkpoints_enough_layers_to_keep_what_the_threshold_keeps():
    assert [layers_to_checkpoint(tokens, 500, 12) for tokens in (0, 500, 501, 770, 1000, 1551, 10**6)] == [
        0,
        0,
        1,
        5,
        6,
        9,
        12,
    ]
    for tokens in (501, 770, 1551, 4000):  # the layers left keep at most what 12 keep for 500 tokens
        assert (12 - layers_to_checkpoint(tokens, 500, 12)) * tokens <= 12 * 500


def test_a_model_without_decoder_layers_is_left_alone():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    assert checkpoint_long_steps(model, THRESHOLD) == 0
    assert not model._forward_pre_hooks


def test_typical_step_is_the_median_row_of_the_rows_selected_times_the_batch():
    rows = Dataset.from_dict({"input_ids": [[1] * n for n in (3, 40, 5, 7, 900)]})
    assert typical_step_tokens(rows, 4) == 7 * 4
    assert typical_step_tokens(rows.select([1, 4, 0]), 2) == 40 * 2  # the selection, not the table underneath
    assert typical_step_tokens(Dataset.from_dict({"chosen_ids": [[1, 2]]}), 4) is None
    assert typical_step_tokens(rows.select([]), 4) is None


def _cfg(tiny_model_dir, **keys):
    base = {"model_name_or_path": str(tiny_model_dir), "template": "qwen", "finetuning_type": "full"}
    return load_config(None, {**base, **keys})


@pytest.mark.parametrize(
    ("keys", "applies"),
    [
        ({}, True),  # auto, and a tiny model fits: off, but for the long steps
        ({"gradient_checkpointing": "auto"}, True),
        ({"gradient_checkpointing": False}, False),  # the user keeps every step's activations
        ({"gradient_checkpointing": True}, False),  # every step checkpointed already
        ({"disable_gradient_checkpointing": True}, False),  # LLaMA-Factory's switch
        ({"torch_compile": True}, False),  # a switched layer would recompile
    ],
)
def test_sft_takes_it_where_auto_resolved_off(tiny_model_dir, tmp_path, keys, applies):
    cfg = _cfg(tiny_model_dir, **keys)
    assert long_step_checkpointing_applies(cfg, build_training_arguments(cfg, str(tmp_path))) is applies
