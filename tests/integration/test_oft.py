"""OFT (finetuning_type: oft, LLaMA-Factory's oft_rank / oft_block_size / oft_target / module_dropout): a run trains a
peft OFT adapter that plain peft loads, TuneForge's chat loads the same model, and export merges it exactly."""

from __future__ import annotations

import json

import pytest

from tuneforge.cli import main
from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.export.run import run_export
from tuneforge.model.adapters import prepare_trainable
from tuneforge.utils import run_folder

LINEAR = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


def as_overrides(cfg: dict) -> list[str]:
    return [f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in cfg.items()]


def oft_model(tiny_model_dir, **keys):
    """The tiny model made trainable by TuneForge with these OFT keys."""
    from transformers import AutoModelForCausalLM

    cfg = load_config(None, {"model_name_or_path": str(tiny_model_dir), "finetuning_type": "oft", **keys})
    return prepare_trainable(AutoModelForCausalLM.from_pretrained(tiny_model_dir), cfg.finetuning, [])


def oft_layers(model) -> dict:
    from peft.tuners.oft import OFTLayer

    return {name: m for name, m in model.named_modules() if isinstance(m, OFTLayer)}


def test_oft_sft_trains_a_peft_adapter_that_plain_peft_loads(train_overrides, tiny_model_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tuneforge.chat.engine import HuggingFaceEngine

    cfg = train_overrides("oft", oft_block_size=16)
    assert main(["train", *as_overrides(cfg)]) == 0
    out = tmp_path / "out-oft"
    losses = [r["loss"] for r in run_folder.read_records(out) if "loss" in r]
    assert len(losses) == 12 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3, losses
    saved = json.loads((out / "adapter_config.json").read_text())
    assert saved["peft_type"] == "OFT" and saved["oft_block_size"] == 16 and saved["r"] == 0
    assert sorted(saved["target_modules"]) == LINEAR  # oft_target: all = every linear layer but the head
    assert not (out / "model.safetensors").exists()  # only the adapter is saved

    # plain transformers + peft load it; TuneForge's chat engine loads the same model (base + OFT, merged)
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), out).eval()
    engine = HuggingFaceEngine(
        load_config(
            None, {"model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": str(out), "template": "qwen"}
        )
    )
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.tensor([[5, 17, 300, 42, 9, 1000, 7]])
    with torch.no_grad():
        want, got, plain = reference(ids).logits, engine.model(ids).logits, base(ids).logits
    assert (got - want).abs().max().item() < 1e-4
    assert (want - plain).abs().max().item() > 1e-2  # the trained rotations change the model


def make_oft_adapter(base_dir, out_dir, seed: int = 0):
    """A peft OFT adapter with random (non-identity) rotations on every linear layer."""
    import torch
    from peft import OFTConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    config = OFTConfig(r=0, oft_block_size=32, target_modules=LINEAR, init_weights=False)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "oft_R" in name:
                param.mul_(0.1)  # small rotations, like trained ones
    peft_model.save_pretrained(out_dir)
    return out_dir


def test_oft_adapter_merges_on_export_to_base_plus_adapter(tiny_model_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = make_oft_adapter(tiny_model_dir, tmp_path / "oft")
    cfg = {"model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": str(adapter), "template": "qwen"}
    out = run_export(load_config(None, {**cfg, "export_dir": str(tmp_path / "x")}))
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), adapter).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.tensor([[5, 17, 300, 42, 9, 1000, 7]])
    with torch.no_grad():
        got, want, plain = merged(ids).logits, reference(ids).logits, base(ids).logits
    assert (got - want).abs().max().item() < 1e-5
    assert (got - plain).abs().max().item() > 1e-2


def test_oft_keys_shape_the_adapter(tiny_model_dir):
    """oft_block_size / oft_rank set the blocks of every layer; oft_target picks the layers."""
    by_size = oft_layers(oft_model(tiny_model_dir, oft_block_size=16))
    assert sorted({name.rsplit(".", 1)[-1] for name in by_size}) == LINEAR
    q = next(m for n, m in by_size.items() if n.endswith("q_proj"))  # in_features 128
    down = next(m for n, m in by_size.items() if n.endswith("down_proj"))  # in_features 256
    assert (q.oft_block_size["default"], q.r["default"]) == (16, 8)
    assert (down.oft_block_size["default"], down.r["default"]) == (16, 16)
    assert tuple(q.oft_R["default"].weight.shape) == (8, 16 * 15 // 2)

    by_rank = oft_layers(oft_model(tiny_model_dir, oft_rank=4, oft_block_size=0, oft_target="q_proj,v_proj"))
    assert sorted({name.rsplit(".", 1)[-1] for name in by_rank}) == ["q_proj", "v_proj"]
    assert {(m.r["default"], m.oft_block_size["default"]) for m in by_rank.values()} == {(4, 32)}


def test_module_dropout_sets_random_blocks_to_identity_while_training(tiny_model_dir):
    import torch

    model = oft_model(tiny_model_dir, module_dropout=0.5, oft_target="q_proj")
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "oft_R" in name:
                param.normal_(0, 0.1)
    rotation = next(iter(oft_layers(model).values())).oft_R["default"]  # 4 blocks of 32
    eye = torch.eye(32)

    def identity_blocks():
        blocks = rotation._cayley_batch(rotation.weight, 32, rotation.use_cayley_neumann, 5)
        return sum(torch.equal(b, eye) for b in blocks)

    model.train()
    assert identity_blocks() == 2  # int(0.5 * 4) blocks dropped to the identity
    ids = torch.tensor([[5, 17, 300, 42, 9, 1000, 7]])
    with torch.no_grad():
        runs = [model(ids).logits for _ in range(6)]
    assert any((r - runs[0]).abs().max() > 1e-4 for r in runs[1:])  # a different draw of blocks each step
    model.eval()
    assert identity_blocks() == 0
    with torch.no_grad():
        assert torch.equal(model(ids).logits, model(ids).logits)


def test_oft_adapter_on_a_4bit_base_trains(train_overrides, tmp_path):
    """LLaMA-Factory's qoft example: OFT on a bitsandbytes 4-bit base (works on CPU with peft 0.21)."""
    cfg = train_overrides("oft", max_steps=3, quantization_bit=4, quantization_method="bnb", output_dir=tmp_path / "q")
    assert main(["train", *as_overrides(cfg)]) == 0
    losses = [r["loss"] for r in run_folder.read_records(tmp_path / "q") if "loss" in r]
    assert len(losses) == 3 and all(0 < loss < 20 for loss in losses)
    assert json.loads((tmp_path / "q" / "adapter_config.json").read_text())["peft_type"] == "OFT"


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"finetuning_type": "oft", "lora_target": "q_proj"}, "use it instead"),
        ({"finetuning_type": "oft", "lora_rank": 4}, "'lora_rank' has no effect with finetuning_type: oft"),
        (
            {"finetuning_type": "lora", "oft_block_size": 16},
            "'oft_block_size' has no effect with finetuning_type: lora",
        ),
        ({"finetuning_type": "freeze", "module_dropout": 0.1}, "'module_dropout' has no effect"),
        ({"finetuning_type": "oft", "oft_rank": 4}, "give one"),
        ({"finetuning_type": "oft", "oft_block_size": 0}, "both 0"),
        ({"finetuning_type": "oft", "module_dropout": 1.0}, "module_dropout"),
        ({"finetuning_type": "full", "quantization_bit": 4}, "needs LoRA or OFT"),
    ],
)
def test_oft_key_rules(keys, message):
    with pytest.raises(UserError, match=message):
        load_config(None, {"model_name_or_path": "m", **keys})


def test_oft_accepts_adapter_keys_and_quantization():
    cfg = load_config(
        None,
        {"model_name_or_path": "m", "finetuning_type": "oft", "quantization_bit": 4, "additional_target": "lm_head"},
    )
    assert cfg.finetuning.uses_adapter and cfg.model.quantization_bit == 4


def test_continuing_an_adapter_of_another_method_is_refused(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    adapter = make_oft_adapter(tiny_model_dir, tmp_path / "oft")
    cfg = load_config(None, {"model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": str(adapter)})
    with pytest.raises(UserError, match="OFT adapter; finetuning_type is lora"):
        prepare_trainable(AutoModelForCausalLM.from_pretrained(tiny_model_dir), cfg.finetuning, [str(adapter)])


def test_estimate_counts_the_oft_parameters_peft_trains(tiny_model_dir):
    from tuneforge.model.estimate import estimate_memory

    for keys in ({"oft_block_size": 16}, {"oft_rank": 4, "oft_block_size": 0, "oft_target": "q_proj,down_proj"}):
        model = oft_model(tiny_model_dir, **keys)
        trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
        cfg = load_config(None, {"model_name_or_path": str(tiny_model_dir), "finetuning_type": "oft", **keys})
        assert estimate_memory(cfg, cuda=False)["trainable_params"] == trained
