"""model/lean_activations.py: RMSNorm and SwiGLU as one autograd function each give the model's own loss and
gradients for every family they are enabled for, and keep fewer activations for the backward pass."""

import pytest
import torch

from small_models import loss_grads_saved, small_causal_lm
from tuneforge.model.lean_activations import LEAN_MODEL_TYPES, use_lean_activations


def _batch():
    torch.manual_seed(1)
    ids = torch.randint(3, 96, (2, 10))
    return {"input_ids": ids, "labels": ids}


def _loss_grads_saved(model):
    return loss_grads_saved(model, _batch())


@pytest.mark.parametrize("model_type", sorted(LEAN_MODEL_TYPES))
def test_same_loss_and_gradients_and_fewer_saved_activations(model_type):
    reference, model = small_causal_lm(model_type), small_causal_lm(model_type)
    patched = use_lean_activations(model)
    layers = model.config.num_hidden_layers
    assert patched >= 2 * layers + 1  # two norms a layer and the final one, at least (+ MLPs, Qwen3's q/k norms)
    want, want_grads, want_saved = _loss_grads_saved(reference)
    got, got_grads, got_saved = _loss_grads_saved(model)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    assert got_grads.keys() == want_grads.keys()
    for name, grad in want_grads.items():
        torch.testing.assert_close(got_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)
    tokens, hidden = 20, model.config.hidden_size
    # every norm drops its normalised input: (2 a layer + the final one) x tokens x hidden floats, at least
    assert want_saved - got_saved >= (2 * layers + 1) * tokens * hidden * 4, (want_saved, got_saved)


def test_dense_mlp_drops_silu_output_and_product():
    reference, model = small_causal_lm("llama"), small_causal_lm("llama")
    use_lean_activations(model)
    _, _, want_saved = _loss_grads_saved(reference)
    _, _, got_saved = _loss_grads_saved(model)
    layers, tokens, hidden, inter = 2, 20, 32, 48
    # the norms' normalised inputs, silu(gate), and silu(gate) * up (model/swiglu_down.py: down_proj is plain here)
    assert want_saved - got_saved == ((2 * layers + 1) * hidden + 2 * layers * inter) * tokens * 4


def test_other_norms_and_activations_are_left_alone():
    torch.manual_seed(0)
    gemma = small_causal_lm("gemma")  # (1 + weight) norms, GELU MLPs
    assert use_lean_activations(gemma) == 0
    llama = small_causal_lm("llama", hidden_act="gelu")
    assert use_lean_activations(llama) == 2 * 2 + 1  # the norms; the GELU MLPs keep their forward
