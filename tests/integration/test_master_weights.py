"""A 16-bit run keeps its trainable weights in fp32 (LLaMA-Factory's "Upcasting trainable params to float32"): the
dtypes each method ends up with, the cases that keep 16-bit weights, and why it matters (a small update is kept)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from tuneforge.cli import main
from tuneforge.config import load_config
from tuneforge.model.loader import load_tokenizer
from tuneforge.model.upcast import keeps_fp32_master_weights
from tuneforge.train.arguments import compute_dtype
from tuneforge.train.common import load_trainable_model
from tuneforge.utils import run_folder


def fp32_master_weights(cfg) -> bool:
    return keeps_fp32_master_weights(cfg, compute_dtype(cfg) in (torch.bfloat16, torch.float16))


def run_config(model_dir, **keys):
    return load_config(None, {"model_name_or_path": str(model_dir), "dataset": "d", **keys})


def trainable_model(model_dir, **keys):
    cfg = run_config(model_dir, **keys)
    return load_trainable_model(cfg, load_tokenizer(cfg.model))


def dtypes(model, trainable: bool) -> set:
    return {p.dtype for p in model.parameters() if p.requires_grad == trainable}


@pytest.mark.parametrize("method", ["full", "freeze", "lora"])
def test_trainable_weights_are_fp32_and_frozen_ones_stay_16_bit(tiny_model_dir, method):
    keys = {"freeze_trainable_layers": 1} if method == "freeze" else {}  # of the tiny model's 2 layers
    model = trainable_model(tiny_model_dir, finetuning_type=method, compute_type="bf16", **keys)
    assert dtypes(model, trainable=True) == {torch.float32}
    frozen = dtypes(model, trainable=False)
    assert frozen == (set() if method == "full" else {torch.bfloat16})  # freeze / LoRA keep their memory saving


def test_full_tuning_loads_the_checkpoints_fp32_bits(tiny_model_dir):
    """Full tuning loads in fp32 at once: an fp32 checkpoint's weights arrive unrounded (not via bf16)."""
    model = trainable_model(tiny_model_dir, finetuning_type="full", compute_type="bf16")
    plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    trained = dict(model.named_parameters())
    assert all(torch.equal(trained[name], param) for name, param in plain.named_parameters())


def test_full_tuning_of_a_vlm_keeps_its_frozen_tower_16_bit(tiny_vlm_dir):
    model = trainable_model(tiny_vlm_dir(), finetuning_type="full", compute_type="bf16")  # freeze_vision_tower: on
    tower = {p.dtype for n, p in model.named_parameters() if "visual" in n}
    assert tower == {torch.bfloat16} and dtypes(model, trainable=True) == {torch.float32}
    assert dtypes(model, trainable=False) == {torch.bfloat16}
    kept = trainable_model(tiny_vlm_dir(), finetuning_type="full", compute_type="bf16", upcast_layernorm=True)
    norms = {p.dtype for n, p in kept.named_parameters() if "visual" in n and "norm" in n and p.ndim == 1}
    assert norms == {torch.float32}  # upcast_layernorm's norms stay fp32 in the frozen tower too


def test_pure_bf16_keeps_every_weight_bf16(tiny_model_dir):
    model = trainable_model(tiny_model_dir, finetuning_type="full", compute_type="pure_bf16")
    assert dtypes(model, trainable=True) == {torch.bfloat16}


@pytest.mark.parametrize(
    ("keys", "env", "kept"),
    [
        ({"compute_type": "bf16"}, {}, True),
        ({"bf16": True}, {}, True),  # LLaMA-Factory's key
        ({"compute_type": "fp32"}, {}, False),  # nothing to keep: the weights are fp32 already
        ({"compute_type": "pure_bf16"}, {}, False),
        ({"compute_type": "bf16", "use_badam": True}, {}, False),
        ({"compute_type": "bf16"}, {"ACCELERATE_USE_FSDP": "true"}, False),
        ({"compute_type": "bf16"}, {"ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}, False),
        ({"compute_type": "bf16"}, {"ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}, True),
    ],
)
def test_which_runs_keep_fp32_master_weights(monkeypatch, keys, env, kept):
    cfg = run_config("m", finetuning_type="full", **keys)
    for name, value in env.items():  # as `accelerate launch` sets them (after the load: FSDP is refused on a CPU)
        monkeypatch.setenv(name, value)
    assert fp32_master_weights(cfg) is kept


def test_zero3_keeps_its_own_master_weights_unless_quantized(tmp_path):
    pytest.importorskip("deepspeed")  # the config is read only where deepspeed is installed
    for stage, kept in ((2, True), (3, False)):
        ds = tmp_path / f"ds{stage}.json"
        ds.write_text(json.dumps({"zero_optimization": {"stage": stage}}), encoding="utf-8")
        assert fp32_master_weights(run_config("m", compute_type="bf16", deepspeed=str(ds))) is kept
    quantized = run_config("m", compute_type="bf16", deepspeed=str(ds), quantization_bit=4, finetuning_type="lora")
    assert fp32_master_weights(quantized)


def test_a_small_update_is_kept_in_fp32_and_lost_in_bf16(tiny_model_dir):
    """Why: one AdamW step of lr 1e-6 moves each weight by about 1e-6, below a bf16 weight's precision (its weights
    here are ~0.02, spaced ~1e-4 apart). The fp32 master weights take the step; pure bf16 weights do not move."""
    moved = {}
    for compute_type in ("bf16", "pure_bf16"):
        model = trainable_model(tiny_model_dir, finetuning_type="full", compute_type=compute_type)
        weight = model.model.layers[0].mlp.down_proj.weight
        before = weight.detach().clone()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, weight_decay=0.0)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=torch.tensor([[5, 6, 7, 8, 9, 10]]), labels=torch.tensor([[5, 6, 7, 8, 9, 10]])).loss
        loss.backward()
        optimizer.step()
        moved[compute_type] = (weight.detach() != before).float().mean().item()
    assert moved["bf16"] > 0.9 and moved["pure_bf16"] < 0.05


def test_a_bf16_full_run_trains_and_saves_a_model_transformers_loads(train_overrides):
    cfg = train_overrides("full", compute_type="bf16", learning_rate=3e-3)
    assert main(["train", *[f"{k}={v}" for k, v in cfg.items()]]) == 0
    losses = [r["loss"] for r in run_folder.read_records(cfg["output_dir"]) if "loss" in r]
    assert len(losses) == 12 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    with safe_open(f"{cfg['output_dir']}/model.safetensors", "pt") as f:  # the trained (master) weights
        names = f.keys()
        assert {f.get_slice(name).get_dtype() for name in names} == {"F32"}
    model = AutoModelForCausalLM.from_pretrained(cfg["output_dir"])
    assert torch.isfinite(model(input_ids=torch.tensor([[5, 6, 7]])).logits).all()
