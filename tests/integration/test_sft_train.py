"""SFT end to end on the tiny model: the loss falls for each method; outputs load in plain transformers / peft."""

from __future__ import annotations

import json

import pytest
import torch

from tuneforge.config import load_config
from tuneforge.train.run import run_training


def read_losses(out) -> list[float]:
    lines = (out / "trainer_log.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["loss"] for line in lines if json.loads(line).get("loss") is not None]


@pytest.mark.parametrize("method", ["lora", "freeze", "full"])
def test_loss_falls(method, train_overrides):
    extra = {"freeze_trainable_layers": 1, "freeze_extra_modules": "lm_head"} if method == "freeze" else {}
    out = run_training(load_config(None, train_overrides(method, **extra)))
    losses = read_losses(out)
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3, losses
    assert (out / "training_loss.png").is_file()
    assert (out / "config.yaml").is_file() and (out / "train_results.json").is_file()
    record = json.loads((out / "trainer_log.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 12 and record["tokens_seen"] > 0 and record["lr"] > 0


def test_lora_adapter_loads_with_plain_peft(train_overrides, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = run_training(load_config(None, train_overrides("lora")))
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        before = base(ids).logits
        tuned = PeftModel.from_pretrained(base, out)(ids).logits
    assert not torch.allclose(before, tuned, atol=1e-4)


def test_full_output_loads_with_plain_transformers(train_overrides, tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = run_training(load_config(None, train_overrides("full", max_steps=3)))
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    changed = any(
        not torch.equal(a, b) for a, b in zip(model.state_dict().values(), base.state_dict().values(), strict=True)
    )
    assert changed
    # the saved chat template renders what training saw
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert "<|im_start|>user\nhi<|im_end|>" in text


def test_freeze_trains_only_the_chosen_layers(train_overrides, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    out = run_training(load_config(None, train_overrides("freeze", max_steps=2, freeze_trainable_layers=1)))
    tuned = AutoModelForCausalLM.from_pretrained(out).state_dict()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    last = f"layers.{len([k for k in base if k.endswith('input_layernorm.weight')]) - 1}."
    for name, weight in base.items():
        assert torch.equal(weight, tuned[name]) != (last in name), name


def test_lora_with_gradient_checkpointing_trains_the_same(train_overrides, tmp_path):
    # transformers enables input grads when checkpointing is on, so frozen-base LoRA still gets gradients
    plain = run_training(load_config(None, train_overrides("lora", max_steps=4, output_dir=str(tmp_path / "p"))))
    ckpt = run_training(
        load_config(
            None, train_overrides("lora", max_steps=4, output_dir=str(tmp_path / "c"), gradient_checkpointing=True)
        )
    )
    assert read_losses(ckpt) == pytest.approx(read_losses(plain), rel=1e-5)


def test_padding_free_batches_train_as_the_padded_ones(train_overrides, tmp_path, monkeypatch):
    """On a CPU with the default attention every batch is one row of samples (model/varlen_attention.py): the losses
    are those of padded batches (`flash_attn: sdpa` keeps them padded). Both runs use the lean RMSNorm / SwiGLU
    (model/lean_activations.py), whose numbers tests/unit/test_lean_activations.py checks."""
    from tuneforge.train import sft

    def spy(name: str) -> list:
        """Calls of sft.`name`, by what each returned; the real function still runs."""
        real, returned = getattr(sft, name), []
        monkeypatch.setattr(sft, name, lambda model: returned.append(real(model)) or returned[-1])
        return returned

    switched, lean = spy("use_varlen_attention"), spy("use_lean_activations")
    padded = run_training(load_config(None, train_overrides("full", flash_attn="sdpa", output_dir=str(tmp_path / "p"))))
    assert not switched
    free = run_training(load_config(None, train_overrides("full", output_dir=str(tmp_path / "f"))))
    assert len(switched) == 1
    layers = json.loads((free / "config.json").read_text())["num_hidden_layers"]
    assert lean == [3 * layers + 1] * 2  # both runs on a CPU: 2 norms + the MLP a layer, the final norm
    torch.testing.assert_close(torch.tensor(read_losses(free)), torch.tensor(read_losses(padded)), rtol=1e-4, atol=1e-4)
    assert "sdpa_varlen" not in (free / "config.json").read_text()
