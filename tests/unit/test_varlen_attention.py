"""model/varlen_attention.py: a flattened (padding-free) batch through sdpa_varlen gives the padded batch's loss and
gradients for every family it is enabled for; padded batches and generation keep plain sdpa; models whose
attention is more than causal are not switched."""

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from small_models import loss_and_grads, small_causal_lm
from tuneforge.data.collate import SftCollator
from tuneforge.model.varlen_attention import (
    VARLEN_MODEL_TYPES,
    sample_spans,
    use_varlen_attention,
    varlen_attention_fits,
)


def _rows():
    """Three samples of different lengths: a prompt (untrained) and a response (trained)."""
    torch.manual_seed(1)
    rows = []
    for length, prompt in ((11, 4), (6, 2), (9, 5)):
        ids = torch.randint(3, 96, (length,)).tolist()
        rows.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:], "attention_mask": [1] * length})
    return rows


@pytest.mark.parametrize("model_type", sorted(VARLEN_MODEL_TYPES))
def test_flattened_batch_matches_the_padded_batch(model_type):
    model = small_causal_lm(model_type)
    assert varlen_attention_fits(model.config)
    padded = SftCollator(pad_token_id=0)(_rows())
    assert (padded["attention_mask"] == 0).sum() == 7  # 5 + 2 pad tokens
    want, want_grads = loss_and_grads(model, padded)

    use_varlen_attention(model)
    flat = SftCollator(pad_token_id=0, flatten=True)(_rows())
    assert flat["input_ids"].shape == (1, 26) and "attention_mask" not in flat
    got, got_grads = loss_and_grads(model, flat)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert got_grads.keys() == want_grads.keys()
    for name, grad in want_grads.items():
        torch.testing.assert_close(got_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_neat_packed_rows_attend_per_sample():
    """Rows that neat packing built (samples back to back, positions restarting) keep their samples apart too."""
    model = small_causal_lm("qwen2")
    a, b, c = _rows()
    want, _ = loss_and_grads(model, SftCollator(pad_token_id=0)([a, b, c]))
    packed = {
        "input_ids": a["input_ids"] + b["input_ids"],
        "labels": a["labels"] + b["labels"],  # b's first label is its prompt's: untrained, as neat packing leaves it
        "position_ids": [*range(11), *range(6)],
    }
    c = {**c, "position_ids": list(range(9))}
    use_varlen_attention(model)
    got, _ = loss_and_grads(model, SftCollator(pad_token_id=0, flatten=True)([packed, c]))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_without_the_split_a_flattened_row_would_attend_across_samples():
    """The check above has teeth: plain sdpa on the flattened row without a mask mixes the samples."""
    model = small_causal_lm("qwen2")
    flat = SftCollator(pad_token_id=0, flatten=True)(_rows())
    use_varlen_attention(model)
    split = model(**flat).loss
    whole = model(input_ids=flat["input_ids"], labels=flat["labels"]).loss  # positions 0..25: one causal sample
    assert not torch.allclose(split, whole, atol=1e-4)


def test_padded_batches_and_generation_keep_plain_sdpa():
    reference, model = small_causal_lm("llama").eval(), small_causal_lm("llama").eval()
    use_varlen_attention(model)
    assert model.config._attn_implementation == "sdpa_varlen"
    padded = SftCollator(pad_token_id=0)(_rows())
    torch.testing.assert_close(model(**padded).logits, reference(**padded).logits)
    prompts = torch.tensor([[0, 0, 5, 6, 7], [8, 9, 10, 11, 12]])  # left-padded, as generation pads
    mask = (prompts != 0).long()
    kwargs = dict(attention_mask=mask, max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert torch.equal(model.generate(prompts, **kwargs), reference.generate(prompts, **kwargs))


def test_saved_config_names_no_custom_attention(tmp_path):
    model = small_causal_lm("qwen2")
    use_varlen_attention(model)
    model.save_pretrained(tmp_path)
    assert "sdpa_varlen" not in (tmp_path / "config.json").read_text()
    AutoModelForCausalLM.from_pretrained(tmp_path)  # plain transformers loads it


def test_sample_spans():
    positions = torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3], [0, 1, 2, 3, 4, 5, 0, 1, 2]])
    assert sample_spans(positions) == [[(0, 3), (3, 5), (5, 9)], [(0, 6), (6, 9)]]
    assert sample_spans(torch.arange(7).unsqueeze(0)) is None  # one sample a row: plain sdpa


@pytest.mark.parametrize(
    "model_type, settings",
    [
        ("qwen2", {"use_sliding_window": True, "sliding_window": 4, "max_window_layers": 0}),
        ("mistral", {"sliding_window": 4}),
        ("gemma2", {}),  # soft-capped attention, sliding layers
        ("gpt2", {}),  # a family it is not tested on
    ],
)
def test_attention_that_is_more_than_causal_is_not_switched(model_type, settings):
    config = AutoConfig.for_model(model_type, **settings)
    assert not varlen_attention_fits(config)
