"""LLaMA-Factory's additions to the DPO loss that TRL 1.16 lacks in LF's form.

- `ld_alpha` (LD-DPO): a response's log-probability is the sum over the tokens it shares in length with its pair's
  other response, plus `ld_alpha` times the sum over its tokens past that length. LF weights only the POLICY's
  log-probabilities this way; the reference keeps plain sums (TRL's own `ld_alpha` weights both).
- `pref_bco_weight` (BCO): -log σ(r_chosen - δ) - log σ(-(r_rejected - δ)) with r = β·(log π - log π_ref) and δ the
  running mean of the batch-mean rewards seen so far; the DPO loss and it are mixed as (dpo + w·bco) / (1 + w).
"""

from __future__ import annotations


def sequence_logps(per_token_logps, shift_mask, ld_alpha: float | None):
    """(2B,) log-probabilities of the [chosen; rejected] completions from per-token log-probs (zero where masked)."""
    if ld_alpha is None:
        return (per_token_logps * shift_mask).sum(dim=1)
    import torch  # torch: only a training run gets here

    positions = shift_mask.cumsum(dim=1)  # 1, 2, ... along each completion
    lengths = shift_mask.sum(dim=1).long()
    chosen, rejected = lengths.chunk(2, dim=0)
    shared = torch.minimum(chosen, rejected).repeat(2).unsqueeze(1)
    in_shared = (positions > 0) & (positions <= shared) & shift_mask.bool()
    past_shared = (positions > shared) & shift_mask.bool()
    return (per_token_logps * in_shared).sum(dim=1) + ld_alpha * (per_token_logps * past_shared).sum(dim=1)


class BCOLoss:
    """LF's BCO term with its running reward baseline δ (the mean of every training batch's mean reward so far)."""

    def __init__(self):
        self.total, self.count = 0.0, 0

    @property
    def baseline(self) -> float:
        return self.total / self.count if self.count else 0.0

    def __call__(self, chosen_rewards, rejected_rewards, update: bool = True):
        """Per-pair losses; `update` moves the baseline first (training batches), as LF does before using it."""
        import torch
        import torch.nn.functional as F

        if update:
            self.total += torch.cat((chosen_rewards, rejected_rewards)).mean().item()
            self.count += 1
        delta = self.baseline
        return -F.logsigmoid(chosen_rewards - delta) - F.logsigmoid(-(rejected_rewards - delta))
