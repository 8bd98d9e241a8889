"""LLaMA-Factory's SFT loss variants (use_dft_loss, use_asft_loss + asft_alpha, use_eaft_loss + eaft_alpha): the
value against a computation by hand, token by token, in both logits layouts; masked tokens count for nothing; the
Trainer runs them (the ASFT anchor of a LoRA run is the base, the adapter off); a run with each makes it fall; the
combinations that cannot work stop in one line."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tuneforge.cli import main
from tuneforge.config import load_config
from tuneforge.data.collate import keep_trained_logits
from tuneforge.errors import UserError
from tuneforge.train.sft_losses import SftLoss, sft_loss_of, sft_loss_trainer_class
from tuneforge.utils import run_folder

VOCAB = 24  # > 20: EAFT's entropy is over the top 20 of them


def hand_loss(kind: str, logits, labels, alpha: float = 1.0, ref_logits=None) -> float:
    """The LLaMA-Factory formula written out, one trained token at a time, in float64."""
    total, count = 0.0, 0
    for b in range(labels.shape[0]):
        for t in range(labels.shape[1] - 1):
            y = int(labels[b, t + 1])
            if y == -100:
                continue
            z = [float(v) for v in logits[b, t]]
            top = max(z)
            lse = top + math.log(sum(math.exp(v - top) for v in z))
            ce = lse - z[y]
            p = math.exp(-ce)
            if kind == "eaft":
                best = sorted(z, reverse=True)[:20]
                m = best[0]
                norm = m + math.log(sum(math.exp(v - m) for v in best))
                entropy = -sum(math.exp(v - norm) * (v - norm) for v in best)
                total += ce * (entropy / 3.0) ** alpha
            else:
                total += ce * p
            if kind == "asft":
                r = [float(v) for v in ref_logits[b, t]]
                m = max(r)
                ref_lse = m + math.log(sum(math.exp(v - m) for v in r))
                total += alpha * sum(
                    math.exp(rv - ref_lse) * ((rv - ref_lse) - (zv - lse)) for rv, zv in zip(r, z, strict=True)
                )
            count += 1
    return total / count


def fixed_batch():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, VOCAB, generator=gen) * 3
    ref_logits = torch.randn(2, 6, VOCAB, generator=gen) * 3
    labels = torch.tensor([[-100, -100, 3, 7, 1, -100], [-100, 5, 9, 9, 23, 0]])
    return logits, ref_logits, labels


def slim(logits, labels):
    """The same batch as the slim collator lays it out: logits at the trained positions, their targets."""
    batch = keep_trained_logits({"labels": labels.clone()})
    return logits[batch["logits_to_keep"]], batch["shift_labels"]


def loss_value(loss: SftLoss, logits, labels, ref_logits=None, num_items_in_batch=None, layout: str = "whole"):
    if layout == "slim":
        kept, targets = slim(logits, labels)
        ref = None if ref_logits is None else slim(ref_logits, labels)[0]
        return loss({"logits": kept}, labels, num_items_in_batch, shift_labels=targets, ref_logits=ref)
    return loss({"logits": logits}, labels, num_items_in_batch, ref_logits=ref_logits)


@pytest.mark.parametrize("layout", ["whole", "slim"])
def test_dft_loss_matches_hand_computation(layout):
    logits, _, labels = fixed_batch()
    got = loss_value(SftLoss("dft"), logits, labels, layout=layout)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(hand_loss("dft", logits, labels), abs=1e-5, rel=1e-5)
    trained = int((labels[:, 1:] != -100).sum())  # the Trainer's num_items_in_batch: sum / count, here twice the count
    halved = loss_value(SftLoss("dft"), logits, labels, num_items_in_batch=torch.tensor(2 * trained), layout=layout)
    assert halved.item() == pytest.approx(got.item() / 2, abs=1e-6)


@pytest.mark.parametrize("layout", ["whole", "slim"])
@pytest.mark.parametrize("alpha", [1.0, 0.5, 2.0])
def test_eaft_loss_matches_hand_computation(layout, alpha):
    logits, _, labels = fixed_batch()
    got = loss_value(SftLoss("eaft", alpha), logits, labels, layout=layout)
    assert got.item() == pytest.approx(hand_loss("eaft", logits, labels, alpha), abs=1e-5, rel=1e-5)


@pytest.mark.parametrize("layout", ["whole", "slim"])
@pytest.mark.parametrize("alpha", [0.1, 1.0])
def test_asft_loss_matches_hand_computation(layout, alpha):
    logits, ref_logits, labels = fixed_batch()
    got = loss_value(SftLoss("asft", alpha), logits, labels, ref_logits, layout=layout)
    want = hand_loss("asft", logits, labels, alpha, ref_logits)
    assert got.item() == pytest.approx(want, abs=1e-5, rel=1e-5)
    same_anchor = loss_value(SftLoss("asft", alpha), logits, labels, logits.clone(), layout=layout)  # KL 0: DFT
    assert same_anchor.item() == pytest.approx(hand_loss("dft", logits, labels), abs=1e-5)


@pytest.mark.parametrize("kind", ["dft", "eaft"])
def test_the_weights_are_constants_of_the_gradient(kind):
    """d/dz [w * ce] = w * (softmax(z) - onehot(y)): the weight (p, or the entropy term) is detached, as in LF."""
    logits, _, labels = fixed_batch()
    policy = logits.clone().requires_grad_(True)
    loss_value(SftLoss(kind, 1.5), policy, labels).backward()
    b, t, y = 1, 2, int(labels[1, 3])
    count = int((labels[:, 1:] != -100).sum())
    probs = logits[b, t].double().softmax(-1)
    if kind == "dft":
        weight = probs[y]
    else:
        top = logits[b, t].double().topk(20).values.softmax(-1)
        weight = (-(top * top.log()).sum() / 3.0) ** 1.5
    want = weight * (probs - torch.nn.functional.one_hot(torch.tensor(y), VOCAB)) / count
    assert torch.allclose(policy.grad[b, t].double(), want, atol=1e-6)


@pytest.mark.parametrize("kind", ["dft", "asft", "eaft"])
def test_masked_tokens_contribute_nothing(kind):
    logits, ref_logits, labels = fixed_batch()
    targets = torch.nn.functional.pad(labels, (0, 1), value=-100)[:, 1:]
    untrained = targets == -100  # positions whose next token is masked (and the last one)
    loss = SftLoss(kind, 0.7)
    policy = logits.clone().requires_grad_(True)
    base = loss_value(loss, policy, labels, ref_logits)
    base.backward()
    assert policy.grad[untrained].abs().max() == 0
    assert policy.grad[~untrained].abs().max() > 0
    changed, changed_ref = logits.clone(), ref_logits.clone()
    changed[untrained] = torch.randn_like(changed[untrained]) * 10
    changed_ref[untrained] = torch.randn_like(changed_ref[untrained]) * 10
    relabelled = labels.clone()
    relabelled[0, :2] = -100  # already masked: the prompt
    assert loss_value(loss, changed, relabelled, changed_ref).item() == pytest.approx(base.item(), abs=1e-6)
    nothing = torch.full_like(labels, -100)
    empty = loss_value(loss, policy, nothing, ref_logits)
    assert empty.item() == 0 and empty.requires_grad  # a batch with nothing to train: zero, still backward-able


def test_the_keys_choose_the_loss():
    cfg = lambda **kw: load_config(None, {"model_name_or_path": "m", **kw})  # noqa: E731
    assert sft_loss_of(cfg()) is None
    assert sft_loss_of(cfg(use_dft_loss=True)) == SftLoss("dft")
    assert sft_loss_of(cfg(use_asft_loss=True, asft_alpha=0.3)) == SftLoss("asft", 0.3)
    assert sft_loss_of(cfg(use_eaft_loss=True, eaft_alpha=2.0)) == SftLoss("eaft", 2.0)
    assert sft_loss_of(cfg(use_asft_loss=True)).alpha == 0.1  # LF's defaults
    assert sft_loss_of(cfg(use_eaft_loss=True)).alpha == 1.0


def test_trainer_runs_asft_with_the_lora_base_as_anchor_on_slim_batches(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, TrainingArguments

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    for name, param in model.named_parameters():
        if "lora_B" in name:  # as after some training: the policy differs from its base
            torch.nn.init.normal_(param, std=0.5)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    trainer = sft_loss_trainer_class()(model=model, args=args, sft_loss=SftLoss("asft", 0.5))
    input_ids = torch.randint(0, 200, (2, 7), generator=torch.Generator().manual_seed(1))
    labels = input_ids.clone()
    labels[0, :3], labels[1, :5] = -100, -100
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels}
    model.eval()  # no LoRA dropout, so the hand computation sees the same numbers
    with torch.no_grad():
        whole = model(input_ids=input_ids).logits
        with model.disable_adapter():
            anchor = model(input_ids=input_ids).logits
    assert (whole - anchor).abs().max() > 1e-2
    got = trainer.compute_loss(model, keep_trained_logits(dict(batch)))
    assert got.item() == pytest.approx(hand_loss("asft", whole, labels, 0.5, anchor), abs=1e-5, rel=1e-5)


@pytest.mark.parametrize("layout", ["whole", "slim"])
def test_trainer_runs_asft_against_a_separate_anchor(tiny_model_dir, tmp_path, layout):
    """full / freeze (or ref_model): the anchor is a frozen model of its own, run on the same batch."""
    from transformers import AutoModelForCausalLM, TrainingArguments

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    anchor = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).requires_grad_(False)
    with torch.no_grad():
        model.lm_head.weight.add_(torch.randn_like(model.lm_head.weight) * 0.5)  # as after some training
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    trainer = sft_loss_trainer_class()(model=model, args=args, sft_loss=SftLoss("asft", 0.2), anchor=anchor)
    input_ids = torch.randint(0, 200, (2, 7), generator=torch.Generator().manual_seed(2))
    labels = input_ids.clone()
    labels[:, :4] = -100
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels}
    model.eval()
    with torch.no_grad():
        whole, reference = model(input_ids=input_ids).logits, anchor(input_ids=input_ids).logits
    got = trainer.compute_loss(model, keep_trained_logits(batch) if layout == "slim" else batch)
    assert got.item() == pytest.approx(hand_loss("asft", whole, labels, 0.2, reference), abs=1e-5, rel=1e-5)
    assert not any(p.requires_grad for p in trainer.anchor.parameters())


def train(train_overrides, tmp_path, name: str, **extra) -> list[float]:
    cfg = train_overrides("lora", output_dir=str(tmp_path / name), **extra)
    assert main(["train", *[f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in cfg.items()]]) == 0
    return [r["loss"] for r in run_folder.read_records(tmp_path / name) if r.get("loss") is not None]


def test_training_with_each_loss_makes_it_fall(train_overrides, tmp_path):
    """From a random model DFT's -p log p first rises (p from 1/vocab towards 1/e), so each loss continues a short
    cross-entropy run's adapter; from there each falls. The ASFT anchor is the base, so its KL term stays large."""
    warm = train(train_overrides, tmp_path, "ce")
    warm_start = {"adapter_name_or_path": str(tmp_path / "ce"), "max_steps": 10}
    for key in ("use_dft_loss", "use_asft_loss", "use_eaft_loss"):
        losses = train(train_overrides, tmp_path, key, **warm_start, **{key: True})
        assert len(losses) == 10 and all(math.isfinite(v) and v >= 0 for v in losses), (key, losses)
        assert sum(losses[-3:]) < 0.9 * sum(losses[:3]), (key, losses)
        if key == "use_dft_loss":  # p * ce < ce: not the cross-entropy the warm-up logged
            assert losses[0] < 0.5 * warm[-1], (losses, warm)


@pytest.mark.parametrize(
    "keys, message",
    [
        ({"use_dft_loss": True, "use_eaft_loss": True}, "use_dft_loss and use_eaft_loss are alternative SFT losses"),
        ({"use_asft_loss": True, "use_dft_loss": True}, "use_dft_loss and use_asft_loss are alternative"),
        ({"use_dft_loss": True, "stage": "dpo"}, "use_dft_loss is an SFT loss; this run is stage dpo"),
        ({"eaft_alpha": 2.0}, "eaft_alpha has no effect without use_eaft_loss"),
        ({"asft_alpha": 0.5, "use_dft_loss": True}, "asft_alpha has no effect without use_asft_loss"),
        ({"use_eaft_loss": True, "label_smoothing_factor": 0.1}, "label_smoothing_factor does not apply"),
    ],
)
def test_combinations_that_cannot_work_stop_in_one_line(keys, message):
    with pytest.raises(UserError, match=message) as err:
        load_config(None, {"model_name_or_path": "m", **keys})
    assert "\n" not in str(err.value)


def test_ref_model_is_an_sft_key_only_as_the_asft_anchor(tiny_model_dir):
    from tuneforge.config.validate import check_stage

    base = {"model_name_or_path": str(tiny_model_dir), "dataset": "toy", "ref_model": str(tiny_model_dir)}
    check_stage(load_config(None, {**base, "use_asft_loss": True}))
    with pytest.raises(UserError, match="'ref_model' is used by stages dpo, kto, ppo; this run is stage sft"):
        check_stage(load_config(None, base))


def test_the_memory_estimate_counts_the_asft_anchor(tiny_model_dir):
    from tuneforge.model.estimate import estimate_memory

    base = {"model_name_or_path": str(tiny_model_dir), "finetuning_type": "full"}
    plain = estimate_memory(load_config(None, base), cuda=False)
    anchored = estimate_memory(load_config(None, {**base, "use_asft_loss": True}), cuda=False)
    assert anchored["weights"] == pytest.approx(2 * plain["weights"], rel=0.02)  # MiB, rounded to 0.1
    lora = {**base, "finetuning_type": "lora"}  # the anchor is the base itself, the adapter off
    assert estimate_memory(load_config(None, {**lora, "use_asft_loss": True}), cuda=False)["weights"] == pytest.approx(
        estimate_memory(load_config(None, lora), cuda=False)["weights"]
    )
