"""The batched scheduler samples from exactly generate's distribution (temperature → top-k → top-p), computed over
the top-k candidates instead of the whole vocabulary: same tokens kept, same probabilities."""

from __future__ import annotations

import pytest
import torch
from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from tuneforge.chat.batching import _distribution, _sample


def _generate_probs(scores, temperature, top_k, top_p):
    warpers = [TemperatureLogitsWarper(temperature)] if temperature != 1.0 else []
    warpers += [TopKLogitsWarper(top_k)] if top_k else []
    warpers += [TopPLogitsWarper(top_p)] if top_p < 1.0 else []
    for warper in warpers:
        scores = warper(None, scores)
    return torch.softmax(scores, dim=-1)


@pytest.mark.parametrize(
    "temperature,top_k,top_p", [(0.95, 50, 0.7), (1.0, 0, 0.9), (1.5, 10, 1.0), (0.3, 0, 1.0), (1.0, 200, 0.05)]
)
def test_the_distribution_equals_generates(temperature, top_k, top_p):
    scores = torch.randn(4, 500, generator=torch.Generator().manual_seed(0)) * 3
    settings = {"do_sample": True, "temperature": temperature, "top_k": top_k, "top_p": top_p}
    ids, probs = _distribution(scores, settings)
    ours = torch.zeros_like(scores).scatter(-1, ids, probs)
    torch.testing.assert_close(ours, _generate_probs(scores, temperature, top_k, top_p), atol=1e-6, rtol=1e-5)
    torch.manual_seed(0)
    drawn = _sample(scores, settings)
    assert all(ours[row, token] > 0 for row, token in enumerate(drawn.tolist()))
