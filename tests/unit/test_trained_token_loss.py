"""train/trained_token_loss.py: SFT's sliced cross-entropy is the model's own loss, with the same gradients; other
batches and evaluation keep the model's forward; models that transform their logits are left alone."""

from types import SimpleNamespace

import torch
from transformers import AutoModelForCausalLM

from small_models import loss_and_grads
from tuneforge.data.collate import keep_trained_logits
from tuneforge.train import cpu_logprob
from tuneforge.train.trained_token_loss import sliced_loss_applies, use_sliced_loss

PLAIN = SimpleNamespace(deepspeed=None, fsdp="", torch_compile=False)  # the TrainingArguments it reads


def _batch():
    torch.manual_seed(0)
    ids = torch.randint(3, 200, (3, 12))
    labels = ids.clone()
    labels[:, :4] = -100  # prompts
    labels[2, 9:] = -100  # padding
    return {"input_ids": ids, "attention_mask": (labels[:, :1] * 0 + 1).expand(3, 12).clone(), "labels": labels}


def test_same_loss_and_gradients_as_the_models_forward(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(cpu_logprob, "TILE_BYTES", 1)  # MIN_ROWS a slice: 3 checkpointed slices for 21 rows
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir).train()
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).train()
    assert sliced_loss_applies(model, PLAIN)
    use_sliced_loss(model)
    monkeypatch.setattr(cpu_logprob, "MIN_ROWS", 8)
    slim = keep_trained_logits(_batch())
    losses = []
    for extra in ({}, {"num_items_in_batch": torch.tensor(40)}):
        want, want_grads = loss_and_grads(reference, slim, **extra)
        got, got_grads = loss_and_grads(model, slim, **extra)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        assert got_grads.keys() == want_grads.keys()
        for name, grad in want_grads.items():
            torch.testing.assert_close(got_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)
        losses.append(got)
    trained = slim["shift_labels"].numel()  # 8 + 8 + 5: the mean's divisor; num_items_in_batch divides the same sum
    assert trained == 21
    torch.testing.assert_close(losses[1] * 40, losses[0] * trained)


def test_evaluation_and_whole_batches_keep_the_models_forward(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    use_sliced_loss(model)
    batch = _batch()
    model.train()
    whole = model(**batch)  # no trained-logits mask: the original forward, logits and all
    assert whole.logits.shape == (3, 12, model.config.vocab_size) and whole.loss is not None
    model.eval()
    with torch.no_grad():
        slim = model(**keep_trained_logits(_batch()))
    assert slim.logits is not None  # evaluation reads logits: the original forward


def test_transformed_logits_sharded_or_compiled_heads_keep_the_models_forward(tiny_model_dir, monkeypatch):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert sliced_loss_applies(model, PLAIN)
    for key in ("deepspeed", "fsdp", "torch_compile"):  # ZeRO-3 / FSDP shard the head's weight
        assert not sliced_loss_applies(model, SimpleNamespace(**{**vars(PLAIN), key: "ds.json"}))
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")  # `accelerate launch` with a DeepSpeed config
    assert not sliced_loss_applies(model, PLAIN)
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "1")
    assert not sliced_loss_applies(model, PLAIN)
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    model.config.final_logit_softcapping = 30.0
    assert not sliced_loss_applies(model, PLAIN)
