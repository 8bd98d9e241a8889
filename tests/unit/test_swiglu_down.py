"""model/swiglu_down.py: SwiGLU and down_proj as one function give the model's own loss and gradients, full and
LoRA, keep one intermediate-sized tensor a layer and token fewer, and step aside where the module is not plain."""

import pytest
import torch
from peft import LoraConfig, get_peft_model

from small_models import loss_and_grads, loss_grads_saved, small_causal_lm
from tuneforge.model import lean_activations, swiglu_down
from tuneforge.model.lean_activations import LEAN_MODEL_TYPES, use_lean_activations

LAYERS, TOKENS, INTERMEDIATE = 2, 20, 48


def _batch():
    torch.manual_seed(1)
    ids = torch.randint(3, 96, (2, 10))
    return {"input_ids": ids, "labels": ids}


def _model(model_type: str, lora: dict | None, lean: bool = True):
    model = small_causal_lm(model_type)
    if lora is not None:
        torch.manual_seed(2)  # lora_B not zero (init_lora_weights=False): every LoRA gradient is non-trivial
        config = {"r": 4, "lora_alpha": 8, "target_modules": "all-linear", "init_lora_weights": False, **lora}
        model = get_peft_model(model, LoraConfig(**config))
    if lean:
        use_lean_activations(model)
    return model


def _loss_grads_saved(model):
    return loss_grads_saved(model, _batch())


def _unfused(monkeypatch):
    monkeypatch.setattr(lean_activations, "fused_down_parts", lambda down, gate: None)


def _assert_same(got, want):
    torch.testing.assert_close(got[0], want[0], atol=1e-6, rtol=1e-6)
    assert got[1].keys() == want[1].keys()
    for name, grad in want[1].items():
        torch.testing.assert_close(got[1][name], grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("lora", [None, {}], ids=["full", "lora"])
@pytest.mark.parametrize("model_type", sorted(LEAN_MODEL_TYPES))
def test_same_loss_and_gradients_as_the_model_itself(monkeypatch, model_type, lora):
    calls = []
    fused = lean_activations.swiglu_down
    monkeypatch.setattr(lean_activations, "swiglu_down", lambda *args: calls.append(1) or fused(*args))
    want = _loss_grads_saved(_model(model_type, lora, lean=False))
    got = _loss_grads_saved(_model(model_type, lora))
    _assert_same(got, want)
    # a dense SwiGLU MLP a layer (Qwen2-MoE's shared expert too); Qwen3-MoE's layers have experts only
    assert len(calls) == (0 if model_type == "qwen3_moe" else LAYERS)


@pytest.mark.parametrize("lora", [None, {}, {"use_rslora": True}], ids=["full", "lora", "rslora"])
def test_keeps_one_intermediate_tensor_fewer(monkeypatch, lora):
    fused = _loss_grads_saved(_model("llama", lora))
    _unfused(monkeypatch)
    unfused = _loss_grads_saved(_model("llama", lora))
    _assert_same(fused, unfused)
    assert unfused[2] - fused[2] == LAYERS * TOKENS * INTERMEDIATE * 4


def test_frozen_down_proj_gets_no_gradient():
    model = _model("llama", None)
    for layer in model.model.layers:
        layer.mlp.down_proj.requires_grad_(False)
    _, grads, _ = _loss_grads_saved(model)
    assert not any("down_proj" in name for name in grads)
    assert any("up_proj" in name for name in grads)


@pytest.mark.parametrize(
    "lora", [{"lora_dropout": 0.1}, {"use_dora": True}, {"lora_bias": True}], ids=["dropout", "dora", "lora_bias"]
)
def test_other_adapters_go_through_the_module(monkeypatch, lora):
    model = _model("llama", lora)
    down = model.base_model.model.model.layers[0].mlp.down_proj
    gate = torch.zeros(1, down.in_features)
    assert swiglu_down.fused_down_parts(down, gate) is None


def test_hooks_autocast_and_other_dtypes_go_through_the_module():
    model = _model("llama", {})
    down = model.base_model.model.model.layers[0].mlp.down_proj
    gate = torch.zeros(1, down.in_features)
    assert swiglu_down.fused_down_parts(down, gate) is not None
    assert swiglu_down.fused_down_parts(down, gate.double()) is None
    assert swiglu_down.fused_down_parts(down, gate.bfloat16()) is None  # fp32 weights, no autocast to cast them
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert swiglu_down.fused_down_parts(down, gate.bfloat16()) is not None
        assert swiglu_down.fused_down_parts(down, gate) is None  # not autocast's dtype: not from gate_proj under it
    calls = []
    handle = down.register_forward_hook(lambda *args: calls.append(1))
    assert swiglu_down.fused_down_parts(down, gate) is None
    loss_and_grads(model, _batch())
    handle.remove()
    assert len(calls) == 1  # the hook ran: the module was called, not stood in for


@pytest.mark.parametrize("lora", [None, {}], ids=["full", "lora"])
def test_under_bf16_autocast_as_autocast_runs_the_module(monkeypatch, lora):
    """compute_type bf16 on a CPU: gate_proj's output is bf16 and the fp32 weights are cast, as autocast casts them."""
    calls = []
    fused = lean_activations.swiglu_down
    monkeypatch.setattr(lean_activations, "swiglu_down", lambda *args: calls.append(1) or fused(*args))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = _loss_grads_saved(_model("llama", lora))
    assert len(calls) == LAYERS
    _unfused(monkeypatch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = _loss_grads_saved(_model("llama", lora))
    torch.testing.assert_close(got[0], want[0], atol=1e-2, rtol=1e-2)
    assert got[1].keys() == want[1].keys()
    for name, grad in want[1].items():
        assert got[1][name].dtype == grad.dtype == torch.float32, name
        torch.testing.assert_close(got[1][name], grad, atol=2e-3, rtol=2e-2, msg=name)
    # the bf16 product that down_proj (or lora_A) kept, 2 bytes a value
    assert want[2] - got[2] >= LAYERS * TOKENS * INTERMEDIATE * 2
