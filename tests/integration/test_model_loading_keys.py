"""LLaMA-Factory's model-loading keys take effect: upcast_layernorm, upcast_lmhead_output, moe_aux_loss_coef,
use_kv_cache, model_max_length, adapter_folder, quantization_device_map (+ offload_folder)."""

from __future__ import annotations

import json

import pytest
import torch

from tuneforge.cli import main
from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.model.adapters import adapter_paths, load_adapters
from tuneforge.model.config_patches import device_map_kwargs
from tuneforge.model.loader import load_model, load_tokenizer
from tuneforge.utils import run_folder


def model_args(path, **keys):
    return load_config(None, {"model_name_or_path": str(path), **keys}).model


@pytest.mark.parametrize("compute_type", ["bf16", "pure_bf16"])
def test_upcast_layernorm_keeps_norms_fp32_and_trains(tiny_model_dir, train_overrides, compute_type):
    args = model_args(tiny_model_dir, upcast_layernorm=True, compute_type=compute_type)
    model = load_model(args, torch.bfloat16, for_training=True)
    norms = {n: p.dtype for n, p in model.named_parameters() if "norm" in n}
    assert len(norms) == 2 * 2 + 1 and set(norms.values()) == {torch.float32}  # 2 per layer + the final norm
    assert model.model.layers[0].self_attn.q_proj.weight.dtype == torch.bfloat16
    plain = load_model(model_args(tiny_model_dir, compute_type=compute_type), torch.bfloat16, for_training=True)
    assert plain.model.norm.weight.dtype == torch.bfloat16
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():  # the norm's output keeps the stream's dtype: a 16-bit model runs without autocast
        assert model(input_ids=ids).logits.dtype == torch.bfloat16

    cfg = train_overrides("full", max_steps=2, compute_type=compute_type, upcast_layernorm=True, learning_rate=1e-2)
    assert main(["train", *[f"{k}={v}" for k, v in cfg.items()]]) == 0
    losses = [r["loss"] for r in run_folder.read_records(cfg["output_dir"]) if "loss" in r]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))


def test_upcast_lmhead_output_gives_fp32_logits(tiny_model_dir):
    ids = torch.tensor([[5, 6, 7, 8]])
    upcast = load_model(model_args(tiny_model_dir, upcast_lmhead_output=True), torch.bfloat16, for_training=True)
    plain = load_model(model_args(tiny_model_dir), torch.bfloat16, for_training=True)
    with torch.no_grad():
        logits, reference = upcast(input_ids=ids).logits, plain(input_ids=ids).logits
    assert upcast.lm_head.weight.dtype == torch.bfloat16
    assert logits.dtype == torch.float32 and reference.dtype == torch.bfloat16
    assert torch.equal(logits, reference.float())  # the same numbers, only kept in fp32
    fp32_head = load_model(model_args(tiny_model_dir, upcast_lmhead_output=True), torch.float32, for_training=True)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # fp32 master weights under autocast
        assert fp32_head(input_ids=ids).logits.dtype == torch.float32


def tiny_moe_dir(tmp_path):
    from transformers import Qwen2MoeConfig, Qwen2MoeForCausalLM

    config = Qwen2MoeConfig(
        vocab_size=256,
        hidden_size=32,
        intermediate_size=64,
        moe_intermediate_size=32,
        shared_expert_intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_experts=4,
        num_experts_per_tok=2,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    Qwen2MoeForCausalLM(config).save_pretrained(tmp_path / "moe")
    return tmp_path / "moe"


def test_moe_aux_loss_coef_adds_the_router_loss(tmp_path, tiny_model_dir):
    folder = tiny_moe_dir(tmp_path)
    ids = torch.tensor([[3, 9, 27, 81, 5, 7, 11, 13]])
    weighted = load_model(model_args(folder, moe_aux_loss_coef=0.5), torch.float32, for_training=True)
    assert weighted.config.output_router_logits is True and weighted.config.router_aux_loss_coef == 0.5
    plain = load_model(model_args(folder), torch.float32, for_training=True)
    assert plain.config.output_router_logits is False
    with torch.no_grad():
        out, ref = weighted(input_ids=ids, labels=ids), plain(input_ids=ids, labels=ids)
    assert out.aux_loss is not None and out.aux_loss > 0
    assert torch.allclose(out.loss, ref.loss + 0.5 * out.aux_loss, atol=1e-5)
    inference = load_model(model_args(folder, moe_aux_loss_coef=0.5), torch.float32, for_training=False)
    assert inference.config.output_router_logits is False  # LF: only training weighs the router
    with pytest.raises(UserError, match="no router load-balancing loss"):
        load_model(model_args(tiny_model_dir, moe_aux_loss_coef=0.5), torch.float32, for_training=True)


def test_use_kv_cache_switches_generation_cache(tiny_model_dir):
    ids = torch.tensor([[5, 6, 7]])
    for use, expect_cache in ((True, True), (False, False)):
        model = load_model(model_args(tiny_model_dir, use_kv_cache=use), torch.float32, for_training=False)
        assert model.config.use_cache is use and model.generation_config.use_cache is use
        out = model.generate(input_ids=ids, max_new_tokens=3, do_sample=False, return_dict_in_generate=True)
        assert (out.past_key_values is not None) is expect_cache
    trained = load_model(model_args(tiny_model_dir, use_kv_cache=True), torch.float32, for_training=True)
    assert trained.config.use_cache is False  # training never caches


def test_model_max_length_is_saved_with_the_run(tiny_model_dir, train_overrides):
    assert load_tokenizer(model_args(tiny_model_dir)).model_max_length == 4096
    assert load_tokenizer(model_args(tiny_model_dir), cutoff_len=8192).model_max_length == 8192  # LF: from cutoff_len
    assert load_tokenizer(model_args(tiny_model_dir), cutoff_len=64).model_max_length == 4096  # only ever raised
    cfg = train_overrides("lora", max_steps=1, model_max_length=2048)
    assert main(["train", *[f"{k}={v}" for k, v in cfg.items()]]) == 0
    saved = json.loads((run_folder.Path(cfg["output_dir"]) / "tokenizer_config.json").read_text())
    assert saved["model_max_length"] == 2048


def test_adapter_folder_loads_the_adapter_from_its_sub_folder(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    base = load_model(model_args(tiny_model_dir), torch.float32, for_training=False)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "run" / "final")
    saved = {k: v.clone() for k, v in peft_model.state_dict().items() if "lora_" in k}

    args = model_args(tiny_model_dir, adapter_name_or_path=str(tmp_path / "run"), adapter_folder="final")
    assert adapter_paths(args) == [str(tmp_path / "run" / "final")]
    fresh = load_model(args, torch.float32, for_training=False)
    loaded = load_adapters(fresh, adapter_paths(args), is_trainable=False)
    state = loaded.state_dict()
    assert saved and all(torch.equal(state[k], v) for k, v in saved.items())
    with pytest.raises(UserError, match="no adapter_config.json"):  # without adapter_folder: the parent folder
        load_adapters(load_model(args, torch.float32, for_training=False), [str(tmp_path / "run")], False)


def test_quantization_device_map_and_offload_folder(tiny_model_dir, tmp_path, monkeypatch):
    """auto: from_pretrained spreads the model with accelerate and offloads to offload_folder. It needs CUDA GPUs:
    without one, config load refuses it in one line."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"model_name_or_path: {tiny_model_dir}\nquantization_bit: 4\nquantization_device_map: auto\n"
        "offload_folder: /tmp/off\n"
    )
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA GPUs; this machine has none") as caught:
            load_config(cfg)
        assert caught.value.where == f"{cfg}:3 (quantization_device_map)" and "\n" not in str(caught.value)
    from tuneforge.config.model_args import ModelArguments

    args = ModelArguments(quantization_bit=4, quantization_device_map="auto", offload_folder="/tmp/off")
    assert device_map_kwargs(args, for_training=False) == {"device_map": "auto", "offload_folder": "/tmp/off"}
    assert device_map_kwargs(ModelArguments(), for_training=False) == {}
    with pytest.raises(UserError, match="for inference"):
        device_map_kwargs(args, for_training=True)
    with pytest.raises(UserError, match="offload_folder is used only"):
        load_config(None, {"model_name_or_path": str(tiny_model_dir), "offload_folder": "elsewhere"})
