"""Randomly initialised causal LMs of a few thousand parameters, one per transformers family, and the loss and
gradients of a batch: for tests that compare a patched model with the family's own forward."""

import torch
from transformers import AutoConfig, AutoModelForCausalLM

SMALL = dict(
    vocab_size=96,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    max_position_embeddings=64,
)
MOE = dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16, shared_expert_intermediate_size=16)


def small_causal_lm(model_type: str, **settings):
    """The family's model in training mode, sdpa attention, seeded; Mistral without its sliding window (7B v0.2
    and later), MoE families with 4 experts."""
    extra = MOE if model_type.endswith("_moe") else {}
    if model_type == "mistral":
        extra = {"sliding_window": None}
    config = AutoConfig.for_model(model_type, **{**SMALL, **extra, **settings})
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").train()


def loss_and_grads(model, batch: dict, **kwargs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The batch's loss and every parameter's gradient, from zero."""
    model.zero_grad()
    loss = model(**batch, **kwargs).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def loss_grads_saved(model, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
    """loss_and_grads, and the bytes of the storages autograd keeps for the backward pass (each counted once; the
    parameters' own are not: they are alive anyway)."""
    saved = {}
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss, grads = loss_and_grads(model, batch)
    return loss, grads, sum(saved.values())
