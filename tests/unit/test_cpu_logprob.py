"""train/cpu_logprob.py: TRL's fused LM head on a CPU gives TRL's numbers, scores only labelled positions, and is
what TRL's trainers call once installed."""

import pytest
import torch
from trl.kernels import ChunkedLogProbFunction
from trl.trainer import utils as trl_utils

from tuneforge.train import cpu_logprob
from tuneforge.train.cpu_logprob import CpuChunkedLogProb, use_cpu_logprob_head

OUTPUTS = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1")


@pytest.mark.parametrize("softcap", [None, 30.0])
def test_same_outputs_and_gradients_as_trls_kernel_across_slices(monkeypatch, softcap):
    monkeypatch.setattr(cpu_logprob, "TILE_BYTES", 4 * 500 * 64)  # 64 rows a slice: 300 rows take 5 (checkpointed)
    torch.manual_seed(0)
    hidden = torch.randn(300, 32, dtype=torch.float64).float().requires_grad_()
    weight = (torch.randn(500, 32) * 0.2).requires_grad_()
    bias = torch.randn(500).requires_grad_()
    targets = torch.randint(0, 500, (300,))
    targets[:5] = (hidden[:5].detach() @ weight.detach().t() + bias.detach()).argmax(-1)  # some top-1 hits

    def run(fn):
        out = fn(hidden, weight, bias, targets, 0.7, 128, softcap, 1.3, OUTPUTS)
        (out[0].sum() + 0.25 * out[1].sum()).backward()  # through the log-probs and the entropy
        grads = [t.grad.clone() for t in (hidden, weight, bias)]
        for t in (hidden, weight, bias):
            t.grad = None
        return out, grads

    theirs, their_grads = run(ChunkedLogProbFunction.apply)
    ours, our_grads = run(CpuChunkedLogProb.apply)
    for name, a, b in zip(OUTPUTS, theirs, ours, strict=True):
        assert a.shape == b.shape, name
        if a.dtype == torch.bool:
            assert torch.equal(a, b) and b[:5].all(), name
        else:
            torch.testing.assert_close(b, a, atol=2e-5, rtol=1e-5, msg=name)
    for a, b in zip(their_grads, our_grads, strict=True):
        torch.testing.assert_close(b, a, atol=2e-5, rtol=1e-5)


def test_unrequested_outputs_are_none_and_one_slice_runs_unchunked():
    hidden, weight = torch.randn(4, 8, requires_grad=True), torch.randn(16, 8)
    log_probs, entropy, log_sum_sq, mean_logits, is_top1 = CpuChunkedLogProb.apply(
        hidden, weight, None, torch.tensor([0, 1, 2, 3]), 1.0, 16, None, 1.0, ("log_probs",)
    )
    assert entropy is log_sum_sq is mean_logits is is_top1 is None
    expected = torch.log_softmax(hidden @ weight.t(), -1)[torch.arange(4), torch.arange(4)]
    torch.testing.assert_close(log_probs, expected)


def test_trls_fused_head_uses_it_on_labelled_positions_only(tiny_model_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    # restored after the test: installing is process-wide
    monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", trl_utils._ChunkedLogProbFunction)
    monkeypatch.setattr(trl_utils, "_use_triton", trl_utils._use_triton)
    use_cpu_logprob_head()
    use_cpu_logprob_head()  # idempotent: still one wrapper deep
    assert trl_utils._ChunkedLogProbFunction is CpuChunkedLogProb
    assert trl_utils._use_triton(torch.device("cpu"))  # TRL's `compact`: labelled positions only

    scored = []
    original = cpu_logprob.token_logprobs
    monkeypatch.setattr(
        cpu_logprob, "token_logprobs", lambda hidden, *a: scored.append(hidden.shape[0]) or original(hidden, *a)
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    trl_utils.add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    ids = torch.randint(3, 200, (2, 9))
    labels = ids.clone()
    labels[:, :5] = -100  # a prompt of 5 tokens: 4 scored positions per row
    with torch.no_grad():
        fused = model(input_ids=ids, labels=labels, fused_lm_head=True)
        logits = model(input_ids=ids).logits
    assert scored == [8]
    expected = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    expected[:, :4] = 0.0  # unlabelled positions are zero in TRL's output
    torch.testing.assert_close(fused.log_probs, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fused.loss, -expected.sum() / 8, atol=1e-5, rtol=1e-5)
