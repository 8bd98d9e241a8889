"""`tuneforge estimate`: parameter counts match the real model and peft, and the prediction moves the right way."""

from __future__ import annotations

import json

import pytest

from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.model.estimate import estimate_memory, format_estimate, param_counts, read_model_config
from tuneforge.model.lean_activations import LEAN_MODEL_TYPES


@pytest.fixture
def estimate(tiny_model_dir):
    def make(**keys) -> dict:
        base = {
            "model_name_or_path": str(tiny_model_dir),
            "template": "qwen",
            "cutoff_len": 256,
            "per_device_train_batch_size": 4,
            "finetuning_type": "lora",
        }
        return estimate_memory(load_config(None, {**base, **keys}), cuda=False)

    return make


def test_parameter_count_matches_the_model(tiny_model_dir, tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    for folder in (tiny_model_dir, tiny_llama_dir):
        model = AutoModelForCausalLM.from_pretrained(folder)
        expected = sum(p.numel() for p in model.parameters())
        assert sum(param_counts(read_model_config(str(folder))).values()) == expected


def test_trainable_counts_match_peft_and_freeze(tiny_model_dir, estimate):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    for rank in (4, 16):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        peft_model = get_peft_model(model, LoraConfig(r=rank, target_modules="all-linear", task_type="CAUSAL_LM"))
        expected = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        assert estimate(lora_rank=rank)["trainable_params"] == expected

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    last_layer = sum(p.numel() for n, p in model.named_parameters() if ".layers.1." in n)
    assert estimate(finetuning_type="freeze", freeze_trainable_layers=1)["trainable_params"] == last_layer


def test_monotonic_in_batch_sequence_and_rank(estimate):
    assert estimate(per_device_train_batch_size=2)["total"] < estimate(per_device_train_batch_size=8)["total"]
    assert estimate(cutoff_len=128)["activations"] < estimate(cutoff_len=1024)["activations"]
    assert estimate(lora_rank=4)["total"] < estimate(lora_rank=64)["total"]


def test_method_ordering(estimate):
    full, freeze, lora = (estimate(finetuning_type=m)["total"] for m in ("full", "freeze", "lora"))
    assert full > freeze > lora
    qlora = estimate(quantization_bit=4)
    assert qlora["weights"] < estimate()["weights"]
    assert estimate(quantization_bit=8)["weights"] > qlora["weights"]


def test_checkpointing_and_preference_stages(estimate):
    plain = estimate(finetuning_type="full")
    checkpointed = estimate(finetuning_type="full", gradient_checkpointing=True)
    assert checkpointed["gradient_checkpointing"] and checkpointed["activations"] < plain["activations"]
    dpo = estimate(stage="dpo", finetuning_type="full")
    assert dpo["weights"] == pytest.approx(2 * plain["weights"], abs=0.2)  # the frozen reference copy
    assert dpo["batch_rows"] == 2 * plain["batch_rows"]  # chosen + rejected


def test_cli_prints_breakdown_and_json(tiny_model_dir, tmp_path, capsys):
    from tuneforge.cli import main

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"model_name_or_path: {tiny_model_dir}\nfinetuning_type: full\ncutoff_len: 128\n")
    assert main(["estimate", str(cfg), "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    parts = ("weights", "gradients", "optimizer", "activations", "framework")
    assert est["total"] == pytest.approx(sum(est[k] for k in parts), abs=0.5)
    assert est["gradients"] > 0 and est["optimizer"] == pytest.approx(2 * est["gradients"], abs=0.2)
    assert main(["estimate", str(cfg)]) == 0
    assert "Estimated peak memory" in capsys.readouterr().out
    assert "activations" in format_estimate(est)


def test_missing_config_json_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="config.json"):
        estimate_memory(load_config(None, {"model_name_or_path": str(tmp_path)}), cuda=False)


def test_sft_counts_logits_only_where_tokens_are_trained(tiny_model_dir, estimate):
    from tuneforge.model.estimate import LOGIT_COPIES, LOGIT_SLICE_MIB, TRAINED_SHARE

    vocab = read_model_config(str(tiny_model_dir))["vocab_size"]
    sliced, whole, dft = estimate(), estimate(train_on_prompt=True), estimate(use_dft_loss=True)
    rows, seq = sliced["batch_rows"], sliced["seq_len"]
    every_token = rows * seq * LOGIT_COPIES * vocab * 4 / 1024**2  # fp32 on a CPU
    # the plain loss: one slice of logits at a time (train/trained_token_loss.py), whatever the batch
    assert whole["activations"] - sliced["activations"] == pytest.approx(every_token - LOGIT_SLICE_MIB, abs=0.2)
    # a loss variant reads whole logits, at the trained positions only
    assert whole["activations"] - dft["activations"] == pytest.approx(every_token * (1 - TRAINED_SHARE), abs=0.2)
    assert estimate(compute_accuracy=True)["activations"] == whole["activations"]  # eval needs whole logits
    longer = estimate(cutoff_len=512)
    assert longer["activations"] - sliced["activations"] < every_token  # no logits per token


def test_a_sharded_or_compiled_head_counts_trained_logits_whole(estimate, monkeypatch):
    dft = estimate(use_dft_loss=True)  # trained-token logits, no slicing
    assert estimate(torch_compile=True)["activations"] == dft["activations"]
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")  # `accelerate launch` with DeepSpeed: a sharded head
    assert estimate()["activations"] == dft["activations"]


def test_preference_stages_count_one_slice_of_logits(estimate):
    from tuneforge.model.estimate import LOGIT_SLICE_MIB

    short, long = estimate(stage="dpo"), estimate(stage="dpo", cutoff_len=512)
    per_token = (long["activations"] - LOGIT_SLICE_MIB) / (long["batch_rows"] * long["seq_len"])
    assert per_token == pytest.approx(
        (short["activations"] - LOGIT_SLICE_MIB) / (short["batch_rows"] * short["seq_len"])
    )


def test_16_bit_full_and_freeze_count_fp32_master_weights(tiny_model_dir, estimate):
    """bf16 full / freeze: the trained weights fp32 (+ autocast's bf16 copy of each) and their gradients fp32; frozen
    weights bf16. pure_bf16: everything bf16."""
    mib = 1024**2
    total = sum(param_counts(read_model_config(str(tiny_model_dir))).values())
    full = estimate(finetuning_type="full", compute_type="bf16")
    assert full["weights"] == pytest.approx(total * (4 + 2) / mib, abs=0.1)
    assert full["gradients"] == pytest.approx(total * 4 / mib, abs=0.1)
    pure = estimate(finetuning_type="full", compute_type="pure_bf16")
    assert (pure["weights"], pure["gradients"]) == pytest.approx((total * 2 / mib, total * 2 / mib), abs=0.1)
    freeze = estimate(finetuning_type="freeze", compute_type="bf16", freeze_trainable_layers=1)
    trained = freeze["trainable_params"]
    assert freeze["weights"] == pytest.approx(((total - trained) * 2 + trained * 6) / mib, abs=0.1)
    assert freeze["gradients"] == pytest.approx(trained * 4 / mib, abs=0.1)


def test_16_bit_lora_counts_the_fp32_inputs_peft_keeps_for_its_adapters(tiny_model_dir, estimate):
    from tuneforge.model.estimate import layer_shapes

    config = read_model_config(str(tiny_model_dir))
    one, every = estimate(compute_type="bf16", lora_target="q_proj"), estimate(compute_type="bf16")
    rows, seq = one["batch_rows"], one["seq_len"]
    others = sum(inputs for name, (inputs, _) in layer_shapes(config).items() if name != "q_proj")
    extra = rows * seq * config["num_hidden_layers"] * others * 4 / 1024**2
    assert every["activations"] - one["activations"] == pytest.approx(extra, abs=0.2)
    assert estimate()["activations"] == estimate(lora_target="q_proj")["activations"]  # fp32: nothing is cast


def test_sft_on_a_cpu_counts_the_lean_norms_and_swiglu(tiny_model_dir, estimate, monkeypatch):
    from tuneforge.model import estimate as estimate_module

    config = read_model_config(str(tiny_model_dir))
    lean, dpo = estimate(), estimate(stage="dpo")
    monkeypatch.setattr(estimate_module, "LEAN_MODEL_TYPES", frozenset())  # a family model/lean_activations skips
    plain = estimate()
    tokens, layers = lean["batch_rows"] * lean["seq_len"], config["num_hidden_layers"]
    # the norms' normalised inputs, silu(gate), and (model/swiglu_down.py, vanilla LoRA) silu(gate) * up
    fewer = tokens * layers * (2 * config["hidden_size"] + 2 * config["intermediate_size"]) * 4 / 1024**2
    assert plain["activations"] - lean["activations"] == pytest.approx(fewer, abs=0.2)
    assert estimate(stage="dpo")["activations"] == dpo["activations"]  # SFT only (train/sft.py patches)
    monkeypatch.setattr(estimate_module, "LEAN_MODEL_TYPES", LEAN_MODEL_TYPES)
    with_dropout = estimate(lora_dropout=0.05)  # peft's dropout: down_proj runs as its own module
    product = tokens * layers * config["intermediate_size"] * 4 / 1024**2
    assert with_dropout["activations"] - lean["activations"] == pytest.approx(product, abs=0.2)
