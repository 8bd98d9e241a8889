"""The arithmetic of PPO for language models, as plain tensor functions (tested on their own).

Shapes: (batch, response_len) per-token tensors with a 0/1 `mask` over the real response tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    return out if shift_mean else out + mean


def token_rewards(score, logprobs, ref_logprobs, mask, kl_coef: float):
    """Per-token reward: -kl_coef · (log π − log π_ref) on every response token, plus the sequence's score on its last
    token. Returns (rewards, kl per token)."""
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    last = (mask.sum(dim=1).long() - 1).clamp(min=0)
    rewards[torch.arange(len(score), device=score.device), last] += score
    return rewards * mask, kl


def gae(rewards, values, mask, gamma: float = 1.0, lam: float = 0.95):
    """Generalised advantage estimation over the response tokens; (advantages, returns)."""
    values = values * mask
    rewards = rewards * mask
    length = rewards.shape[1]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(length)):
        next_value = values[:, t + 1] if t + 1 < length else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = delta + gamma * lam * last
        advantages[:, t] = last
    returns = advantages + values
    return advantages * mask, returns


def ppo_loss(
    logprobs,
    old_logprobs,
    values,
    old_values,
    advantages,
    returns,
    mask,
    cliprange: float = 0.2,
    cliprange_value: float = 0.2,
    vf_coef: float = 0.1,
):
    """Clipped policy objective + clipped value loss; (loss, stats)."""
    ratio = torch.exp(logprobs - old_logprobs)
    pg = torch.max(-advantages * ratio, -advantages * torch.clamp(ratio, 1 - cliprange, 1 + cliprange))
    pg_loss = masked_mean(pg, mask)
    clipped_values = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    vf = 0.5 * torch.max((values - returns) ** 2, (clipped_values - returns) ** 2)
    vf_loss = masked_mean(vf, mask)
    loss = pg_loss + vf_coef * vf_loss
    stats = {
        "policy_loss": pg_loss.item(),
        "value_loss": vf_loss.item(),
        "clip_fraction": masked_mean((torch.abs(ratio - 1) > cliprange).float(), mask).item(),
    }
    return loss, stats


@dataclass
class AdaptiveKL:
    """Ziegler et al.'s controller: nudges the KL coefficient so the measured KL approaches `target`."""

    value: float = 0.2
    target: float = 6.0
    horizon: int = 10000

    def update(self, current_kl: float, n_steps: int) -> None:
        error = max(min(current_kl / self.target - 1, 0.2), -0.2)
        self.value *= 1 + error * n_steps / self.horizon


@dataclass
class RunningMoments:
    """Running mean / std of the reward scores (ppo_score_norm)."""

    mean: float = 0.0
    var: float = 1.0
    count: float = 1e-24

    def update(self, xs: torch.Tensor) -> None:
        n = xs.numel()
        batch_mean, batch_var = xs.mean().item(), xs.var(unbiased=False).item()
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        self.var = (self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total
        self.count = total

    @property
    def std(self) -> float:
        return math.sqrt(max(self.var, 1e-8))
