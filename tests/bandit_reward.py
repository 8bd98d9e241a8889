"""A reward model built by hand, for PPO tests whose outcome must not depend on the CPU's kernels.

A trained reward model's scores (and so a PPO curve calibrated on them) move with the last digits of every float:
on another CPU the same test saw a different reward landscape. This one is exact by construction: a plain
`AutoModelForSequenceClassification` folder (what a full `rm` run saves) whose score is +1 when the last token of
prompt + response is "good" and -1 otherwise. Its layers write nothing (o_proj / down_proj are zero), so the final
hidden state is the last token's embedding, which is set to ±1 in every coordinate; RMSNorm maps that to exactly ±1,
and the score head averages it.

"Good" is the half of the vocabulary whose output embeddings (the policy's lm_head rows) point along one fixed
direction: moving the policy's last hidden state along that direction raises the good tokens' probability together,
so the bandit is learnable by every method in a few steps, and a policy sampling at temperature 1 starts near 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def good_tokens(lm_head: np.ndarray, seed: int = 0) -> np.ndarray:
    """A bool per token: its lm_head row has a positive projection on a fixed random direction (float64, numpy)."""
    direction = np.random.default_rng(seed).standard_normal(lm_head.shape[1])
    return lm_head.astype(np.float64) @ direction > 0


def build_bandit_reward_model(policy_dir: Path, out: Path) -> tuple[Path, np.ndarray]:
    """(folder, good-token mask) of a ±1 reward model for the policy in `policy_dir`, sharing its tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    policy = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32)
    good = good_tokens(policy.get_output_embeddings().weight.detach().numpy())
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    config = AutoConfig.from_pretrained(policy_dir, num_labels=1, pad_token_id=tokenizer.pad_token_id)
    model = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight", "o_proj.bias", "down_proj.bias")):
                param.zero_()
            elif "norm" in name:
                param.fill_(1.0)
        sign = torch.from_numpy(np.where(good, 1.0, -1.0)).float()
        model.get_input_embeddings().weight.copy_(sign[:, None].expand_as(model.get_input_embeddings().weight))
        model.score.weight.fill_(1.0 / config.hidden_size)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out, good
