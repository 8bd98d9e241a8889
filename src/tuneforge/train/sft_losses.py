"""LLaMA-Factory's SFT loss variants, the same math (llamafactory/train/trainer_utils.py, 0.9.5), per trained token
t with cross-entropy ce_t = -log p_t(y_t):

- DFT  (use_dft_loss):  ce_t * p_t, the weight p_t = exp(-ce_t) detached.
- EAFT (use_eaft_loss): ce_t * (H_t / 3) ** eaft_alpha, H_t the entropy of the softmax over the 20 largest logits
  (detached); 3 ~ ln 20, the largest such entropy.
- ASFT (use_asft_loss): DFT + asft_alpha * KL(q_t || p_t), q the frozen anchor's next-token distribution: `ref_model`
  (+ `ref_model_adapters`) if set, else the starting model (full / freeze: a frozen copy; LoRA: the same model with
  its adapter disabled, where LLaMA-Factory has no reference and fails).

The sum over trained tokens is divided by `num_items_in_batch` (the trained tokens of the whole accumulated batch,
counted by the Trainer), else by the batch's own count. For one micro-batch on one device both are LLaMA-Factory's
mean; ASFT there always takes the micro-batch mean and, the Trainer taking a custom loss as scaled for gradient
accumulation, is not divided by the accumulation steps: here it is normalised like DFT and EAFT.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Literal

from tuneforge.data.sft import IGNORE_INDEX

if TYPE_CHECKING:
    import torch

    from tuneforge.config.loader import RunConfig

EAFT_TOP_K = 20  # the logits the entropy is approximated over
EAFT_ENTROPY_SCALE = 3.0  # ~ ln(20), the entropy of a uniform top-20


def next_token_logits_and_targets(logits, labels, shift_labels=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, V) fp32 logits and their (N,) targets. Whole logits (B, S, V) predict the labels one step on (the last
    position has no target); a slim batch (data/collate.py keep_trained_logits) has (N, V) logits and `shift_labels`."""
    import torch.nn.functional as F  # heavy: the loss runs in a training process only

    logits = logits.float()
    if shift_labels is not None and logits.dim() == 2:
        return logits, shift_labels.to(logits.device)
    targets = F.pad(labels, (0, 1), value=IGNORE_INDEX)[..., 1:]
    return logits.reshape(-1, logits.size(-1)), targets.reshape(-1).to(logits.device)


def dft_weights(ce) -> torch.Tensor:
    """p_t of the target token, detached."""
    return (-ce).exp().detach()


def eaft_weights(logits, alpha: float) -> torch.Tensor:
    """(H_t / 3) ** alpha, H_t the entropy over the softmax of the top-20 logits, detached."""
    import torch

    with torch.no_grad():
        top = torch.topk(logits.detach(), k=min(EAFT_TOP_K, logits.size(-1)), dim=-1).values
        log_probs = top - torch.logsumexp(top, dim=-1, keepdim=True)
        entropy = -(log_probs.exp() * log_probs).sum(dim=-1)
        return torch.pow(entropy / EAFT_ENTROPY_SCALE, alpha)


def anchor_kl(logits, ref_logits) -> torch.Tensor:
    """KL(q || p) per token, summed over the vocabulary: F.kl_div(log p, q) as LLaMA-Factory writes it."""
    import torch.nn.functional as F

    q = F.softmax(ref_logits.float(), dim=-1)
    return F.kl_div(F.log_softmax(logits, dim=-1), q, reduction="none").sum(dim=-1)


@dataclass(frozen=True)
class SftLoss:
    """One of the variants, called as the Trainer's `compute_loss_func` (outputs, labels, num_items_in_batch)."""

    kind: Literal["dft", "asft", "eaft"]
    alpha: float = 1.0  # asft_alpha or eaft_alpha; DFT has none

    @property
    def anchored(self) -> bool:
        return self.kind == "asft"

    def __call__(self, outputs, labels, num_items_in_batch=None, shift_labels=None, ref_logits=None):
        import torch.nn.functional as F

        logits, targets = next_token_logits_and_targets(outputs["logits"], labels, shift_labels)
        trained = targets != IGNORE_INDEX
        if not trained.any():
            return logits.sum() * 0.0  # nothing to learn: zero, still part of the graph
        logits, targets = logits[trained], targets[trained]
        ce = F.cross_entropy(logits, targets, reduction="none")
        if self.kind == "eaft":
            per_token = ce * eaft_weights(logits, self.alpha)
        else:
            per_token = ce * dft_weights(ce)
        if self.anchored:  # the anchor's logits come in the policy's layout: the same positions are trained
            ref, _ = next_token_logits_and_targets(ref_logits, labels, shift_labels)
            per_token = per_token + self.alpha * anchor_kl(logits, ref.to(logits.device)[trained])
        if num_items_in_batch is None:
            return per_token.mean()
        if hasattr(num_items_in_batch, "to"):
            num_items_in_batch = num_items_in_batch.to(per_token.device)
        return per_token.sum() / num_items_in_batch


def sft_loss_of(cfg: RunConfig) -> SftLoss | None:
    """The run's loss variant (config/validate.py allows at most one, stage sft only); None: cross-entropy."""
    ft = cfg.finetuning
    if ft.use_dft_loss:
        return SftLoss("dft")
    if ft.use_asft_loss:
        return SftLoss("asft", ft.asft_alpha)
    if ft.use_eaft_loss:
        return SftLoss("eaft", ft.eaft_alpha)
    return None


def sft_loss_trainer_class():
    """transformers' Trainer with one of the variants as its loss; ASFT runs the anchor on the same batch first."""
    import torch
    from transformers import Trainer

    class SftLossTrainer(Trainer):
        def __init__(self, *args, sft_loss: SftLoss, anchor=None, **kwargs):
            # compute_loss_func set: the Trainer counts num_items_in_batch and takes the loss as scaled for accumulation
            super().__init__(*args, compute_loss_func=sft_loss, **kwargs)
            self.sft_loss = sft_loss
            self.anchor = None if anchor is None else self._place(anchor)

        def _place(self, anchor):
            """On the run's devices as TRL places a reference model: sharded under DeepSpeed / FSDP, else moved."""
            from trl.models import prepare_deepspeed, prepare_fsdp  # heavy: only an ASFT run with a separate anchor

            if self.is_deepspeed_enabled:
                return prepare_deepspeed(anchor, self.accelerator)
            if self.is_fsdp_enabled:
                return prepare_fsdp(anchor, self.accelerator)
            return self.accelerator.prepare_model(anchor, evaluation_mode=True)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            shift_labels = inputs.pop("shift_labels", None)  # the slim batch's targets: for the loss, not the model
            ref_logits = self._anchor_logits(model, inputs) if self.sft_loss.anchored else None
            self.compute_loss_func = partial(self.sft_loss, shift_labels=shift_labels, ref_logits=ref_logits)
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

        def _anchor_logits(self, model, inputs):
            """The anchor's logits at the positions the policy keeps (the same `logits_to_keep`)."""
            model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
            with torch.no_grad():
                if self.anchor is not None:
                    return self.anchor(**model_inputs).logits
                with self.accelerator.unwrap_model(model).disable_adapter():  # LoRA: the base is the anchor
                    return model(**model_inputs).logits

    return SftLossTrainer
