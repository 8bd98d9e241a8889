"""TRL's fused LM head on a CPU: the same per-token outputs from native `log_softmax`, a slice of tokens at a time.

TRL 1.x's DPO, KTO and GRPO trainers project the hidden states through the LM head in tiles
(trl/kernels/chunked_logprob.py) so that the (tokens, vocabulary) logits never exist whole. Without Triton it folds
each tile with ~10 elementwise torch passes and, to keep tile shapes fixed for compilers, scores every position
(prompt and padding too) in tiles of 4096 tokens x the whole vocabulary: on a CPU that measured 5-6x the time of a
plain cross-entropy over the same tokens and a transient peak of ~1.4 GiB for 4,088 tokens of an 8k vocabulary
(DPO's peak RSS was 1.5x LLaMA-Factory's). Here, on a CPU only:

- only the positions with a label are scored (TRL's `compact` mode, which it uses on Triton devices);
- each slice of rows computes its logits, `log_softmax` and the requested extras with native kernels; when the rows
  take more than one slice, each slice runs under activation checkpointing, so its logits are recomputed in the
  backward pass instead of kept: the transient is one slice (TILE_BYTES of fp32 logits), whatever the batch.

The outputs are TRL's, with the same meaning: per-token log-probability (with gradient), entropy (with gradient),
log(sum p^2), mean logit and "target is the first argmax" (without). On a GPU TRL's own kernel runs unchanged.
`token_logprobs` also serves SFT's loss (train/trained_token_loss.py) on any device.
"""

from __future__ import annotations

TILE_BYTES = 16 * 2**20  # fp32 logits per slice: 512 rows of an 8k vocabulary; MIN_ROWS of Qwen's 152k
MIN_ROWS = 64  # below this a slice's matmul streams the whole head for too few rows


class CpuChunkedLogProb:
    """Drop-in for trl's ChunkedLogProbFunction (same `apply` arguments and outputs): ours on a CPU, TRL's elsewhere."""

    @staticmethod
    def apply(hidden, weight, bias, targets, temperature, chunk_size, softcap=None, logit_scale=1.0, outputs=()):
        if hidden.device.type != "cpu":
            from trl.kernels import ChunkedLogProbFunction

            return ChunkedLogProbFunction.apply(
                hidden, weight, bias, targets, temperature, chunk_size, softcap, logit_scale, outputs
            )
        return token_logprobs(hidden, weight, bias, targets, temperature, softcap, logit_scale, tuple(outputs))


def token_logprobs(hidden, weight, bias, targets, temperature, softcap, logit_scale, outputs):
    """(log_probs, entropy, log_sum_sq_probs, mean_logits, is_top1) per row of `hidden`; the unrequested are None."""
    import torch
    from torch.utils.checkpoint import checkpoint

    rows = max(MIN_ROWS, TILE_BYTES // (4 * weight.shape[0]))
    transform = (1.0 / temperature, softcap, logit_scale)
    if hidden.shape[0] <= rows:  # one slice: nothing to gain from recomputing it
        return _slice(hidden, weight, bias, targets, transform, outputs)
    pieces = [
        checkpoint(
            _slice, hidden[s : s + rows], weight, bias, targets[s : s + rows], transform, outputs, use_reentrant=False
        )
        for s in range(0, hidden.shape[0], rows)
    ]
    return tuple(None if part[0] is None else torch.cat(part) for part in zip(*pieces, strict=True))


def _slice(hidden, weight, bias, targets, transform, outputs):
    import torch
    import torch.nn.functional as F

    inv_t, softcap, logit_scale = transform
    z = F.linear(hidden, weight, bias).float()
    if logit_scale != 1.0:
        z = z * logit_scale
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    if inv_t != 1.0:
        z = z * inv_t
    log_p = torch.log_softmax(z, dim=-1)
    log_probs = log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    entropy = -(log_p.exp() * log_p).sum(-1) if "entropy" in outputs else None
    with torch.no_grad():
        log_sum_sq = torch.logsumexp(2 * log_p, dim=-1) if "log_sum_sq_probs" in outputs else None
        mean_logits = z.mean(-1) if "mean_logits" in outputs else None
        is_top1 = z.argmax(-1) == targets if "is_top1" in outputs else None  # argmax: the first of tied maxima
    return log_probs, entropy, log_sum_sq, mean_logits, is_top1


def use_cpu_logprob_head() -> None:
    """Routes TRL's fused LM head through CpuChunkedLogProb and scores only labelled positions on a CPU. Idempotent;
    process-wide (a training process runs one trainer). Both names are private to trl.trainer.utils, so
    tests/unit/test_cpu_logprob.py checks they still exist in the locked TRL."""
    from trl.trainer import utils as trl_utils  # trl: ~1 s to import; the SFT loss uses token_logprobs alone

    if trl_utils._ChunkedLogProbFunction is CpuChunkedLogProb:
        return
    on_triton = trl_utils._use_triton
    trl_utils._ChunkedLogProbFunction = CpuChunkedLogProb
    # `compact`: score only positions whose label is not -100, as TRL does where Triton runs
    trl_utils._use_triton = lambda device: device.type == "cpu" or on_triton(device)
