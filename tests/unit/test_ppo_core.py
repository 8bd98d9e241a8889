"""PPO arithmetic against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from tuneforge.train.ppo_core import AdaptiveKL, RunningMoments, gae, masked_whiten, ppo_loss, token_rewards


def test_token_rewards_put_the_score_on_the_last_real_token():
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    logp = torch.tensor([[-1.0, -2.0, -9.0], [-1.0, -1.0, -1.0]])
    ref = torch.tensor([[-1.5, -2.0, -1.0], [-1.0, -2.0, -1.0]])
    rewards, kl = token_rewards(torch.tensor([3.0, -1.0]), logp, ref, mask, kl_coef=0.1)
    assert kl.tolist() == [[0.5, 0.0, 0.0], [0.0, 1.0, 0.0]]
    torch.testing.assert_close(rewards, torch.tensor([[-0.05, 3.0, 0.0], [0.0, -0.1, -1.0]]))


def test_gae_matches_the_recursion():
    rewards = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 0.2, 0.4]])
    mask = torch.ones(1, 3)
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=0.5)
    d2 = 1.0 - 0.4
    d1 = 0.0 + 0.4 - 0.2
    d0 = 0.0 + 0.2 - 0.5
    expected = [d0 + 0.5 * (d1 + 0.5 * d2), d1 + 0.5 * d2, d2]
    assert adv[0].tolist() == pytest.approx(expected)
    assert ret[0].tolist() == pytest.approx([a + v for a, v in zip(expected, [0.5, 0.2, 0.4], strict=True)])
    # lam = 1: the advantage is the return to go minus the value
    adv1, _ = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    assert adv1[0].tolist() == pytest.approx([0.5, 0.8, 0.6])
    # masked positions carry nothing
    adv_m, _ = gae(rewards, values, torch.tensor([[1.0, 1.0, 0.0]]), gamma=1.0, lam=1.0)
    assert adv_m[0, 2].item() == 0.0


def test_clipped_objective_stops_the_gradient_outside_the_trust_region():
    old = torch.zeros(1, 2)
    mask = torch.ones(1, 2)
    adv = torch.tensor([[1.0, 1.0]])
    zeros = torch.zeros(1, 2)
    inside = torch.tensor([[0.1, 0.1]], requires_grad=True)  # ratio 1.105 < 1.2
    outside = torch.tensor([[0.5, 0.5]], requires_grad=True)  # ratio 1.65 > 1.2 with a positive advantage
    for logp, moves in ((inside, True), (outside, False)):
        loss, stats = ppo_loss(logp, old, zeros, zeros, adv, zeros, mask, vf_coef=0.0)
        loss.backward()
        assert (logp.grad.abs().sum().item() > 0) == moves
    assert stats["clip_fraction"] == 1.0


def test_whiten_adaptive_kl_and_running_moments():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    w = masked_whiten(x, torch.tensor([[1.0, 1.0, 1.0, 0.0]]))
    assert w[0, :3].mean().item() == pytest.approx(0.0, abs=1e-6)
    ctl = AdaptiveKL(value=0.2, target=6.0, horizon=100)
    ctl.update(current_kl=12.0, n_steps=10)  # too much KL: the coefficient grows (error clipped at +20%)
    assert ctl.value == pytest.approx(0.2 * 1.02)
    moments = RunningMoments()
    moments.update(torch.tensor([1.0, 3.0]))
    moments.update(torch.tensor([5.0, 7.0]))
    assert moments.mean == pytest.approx(4.0) and moments.std == pytest.approx(
        torch.tensor([1.0, 3, 5, 7]).std(unbiased=False).item()
    )
