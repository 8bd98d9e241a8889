"""SFT's cross-entropy without the (trained tokens, vocabulary) logits: the LM head and the loss a slice at a time.

With trained logits only (data/collate.py keep_trained_logits) the model's forward builds (N, V) logits for the N
trained tokens, and the loss keeps their log-softmax for the backward pass and builds an (N, V) gradient: on the
100m benchmark model (32k vocabulary, ~850 trained tokens a batch) three tensors of ~105 MiB. Here the model's own
forward is replaced, in training and for those batches only, by its backbone plus train/cpu_logprob.py's sliced
log-probabilities (native log_softmax, recomputed per slice in the backward when there is more than one): the same
loss (sum over trained tokens / num_items_in_batch, else their mean, as transformers' ForCausalLMLoss), at most one
slice of logits alive. Evaluation, generation and every other batch run the original forward.
"""

from __future__ import annotations

import functools
import types

from tuneforge.model.logit_head import head_kept_whole, plain_logit_head
from tuneforge.train.cpu_logprob import token_logprobs


def sliced_loss_applies(model, args) -> bool:
    """A plain causal LM whose logits are `lm_head(hidden)` (text only, no logit transform, no router loss), with a
    head whose weight is whole here: not sharded by DeepSpeed or FSDP (from the config or `accelerate launch`'s
    environment), not compiled."""
    import torch

    if not head_kept_whole(args.deepspeed, args.fsdp, args.torch_compile):
        return False

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config
    if config.get_text_config() is not config or not plain_logit_head(config):
        return False
    return isinstance(base.get_output_embeddings(), torch.nn.Linear) and base.get_decoder() is not base


def use_sliced_loss(model) -> None:
    """Patch the (base) model's forward: a training batch with a boolean `logits_to_keep` and `shift_labels` gets its
    loss from the backbone's hidden states at those positions; anything else goes to the original forward. Patched
    on the instance, under any PEFT / DDP wrapper, which call it."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    original = base.forward

    @functools.wraps(type(base).forward)
    def forward(self, *args, logits_to_keep=0, shift_labels=None, num_items_in_batch=None, **kwargs):
        import torch
        from transformers.modeling_outputs import CausalLMOutputWithPast

        sliced = self.training and shift_labels is not None and getattr(logits_to_keep, "dtype", None) == torch.bool
        if not sliced:
            if shift_labels is not None:
                kwargs["shift_labels"] = shift_labels
            if num_items_in_batch is not None:
                kwargs["num_items_in_batch"] = num_items_in_batch
            return original(*args, logits_to_keep=logits_to_keep, **kwargs)
        kwargs.pop("labels", None)  # the targets are `shift_labels`, at the kept positions
        kwargs["use_cache"] = False
        hidden = self.get_decoder()(*args, **kwargs).last_hidden_state[logits_to_keep.to(self.device)]
        head = self.get_output_embeddings()
        targets = shift_labels.to(hidden.device)
        log_probs = token_logprobs(hidden, head.weight, head.bias, targets, 1.0, None, 1.0, ())[0]
        count = log_probs.numel() if num_items_in_batch is None else num_items_in_batch
        if hasattr(count, "to"):
            count = count.to(log_probs.device)
        return CausalLMOutputWithPast(loss=-log_probs.sum() / count)

    base.forward = types.MethodType(forward, base)
