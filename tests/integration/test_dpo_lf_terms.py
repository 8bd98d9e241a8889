"""LLaMA-Factory's DPO additions: `pref_bco_weight` (BCO mixed in) and `ld_alpha` (LD-DPO). The trainer's loss on a
fixed batch equals the same loss computed by hand from plain forward passes of the policy and the reference."""

from __future__ import annotations

import pytest

from tuneforge.config import load_config
from tuneforge.config.validate import check_stage
from tuneforge.errors import UserError

BETA = 0.5
ROWS = [  # token ids of the tiny model's vocabulary; completions of different lengths (LD-DPO's tail)
    {"prompt_ids": [11, 12, 13], "chosen_ids": [21, 22, 23, 24, 25], "rejected_ids": [31, 32]},
    {"prompt_ids": [14, 15], "chosen_ids": [41, 42], "rejected_ids": [51, 52, 53, 54]},
]


def _cfg(tiny_model_dir, tmp_path, **keys):
    cfg = {
        "model_name_or_path": str(tiny_model_dir),
        "stage": "dpo",
        "dataset": "unused",
        "template": "qwen",
        "finetuning_type": "full",
        "output_dir": str(tmp_path / "out"),
        "per_device_train_batch_size": 2,
        "pref_beta": BETA,
        "report_to": "none",
    }
    return load_config(None, {**cfg, **keys})


def _loss_and_models(tiny_model_dir, tmp_path, **keys):
    """(trainer loss on ROWS, policy, reference): the reference is the base with seeded noise, so ratios are not 0."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig

    from tuneforge.train.arguments import build_training_arguments
    from tuneforge.train.dpo import _trainer_class, dpo_settings

    cfg = _cfg(tiny_model_dir, tmp_path, **keys)
    ft = cfg.finetuning
    policy = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    ref = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    args = build_training_arguments(cfg, str(tmp_path / "out"), cls=DPOConfig, **dpo_settings(cfg))
    trainer = _trainer_class()(
        model=policy,
        ref_model=ref.eval().requires_grad_(False),
        args=args,
        train_dataset=Dataset.from_list(ROWS),
        processing_class=AutoTokenizer.from_pretrained(tiny_model_dir),
        pref_loss=ft.pref_loss,
        simpo_gamma=ft.simpo_gamma,
        pref_ftx=ft.pref_ftx,
        bco_weight=ft.pref_bco_weight,
    )
    policy.train()
    batch = trainer.data_collator(ROWS)
    loss = trainer.compute_loss(policy, batch)
    return loss.item(), policy.eval(), ref, trainer


def _completion_logps(model, prompt, completion):
    import torch

    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logps = model(ids).logits[0, :-1].float().log_softmax(-1).gather(-1, ids[0, 1:, None])[:, 0]
    return logps[len(prompt) - 1 :]


def _by_hand(policy, ref, ld_alpha=None, bco_weight=0.0):
    """LF's dpo + bco on ROWS: sigmoid DPO, policy log-probs LD-weighted, reference plain sums."""
    import torch
    import torch.nn.functional as F

    chosen_r, rejected_r = [], []
    for row in ROWS:
        shared = min(len(row["chosen_ids"]), len(row["rejected_ids"]))
        pair = []
        for key in ("chosen_ids", "rejected_ids"):
            pol = _completion_logps(policy, row["prompt_ids"], row[key])
            alpha = 1.0 if ld_alpha is None else ld_alpha
            pol_sum = pol[:shared].sum() + alpha * pol[shared:].sum()
            pair.append(BETA * (pol_sum - _completion_logps(ref, row["prompt_ids"], row[key]).sum()))
        chosen_r.append(pair[0])
        rejected_r.append(pair[1])
    chosen, rejected = torch.stack(chosen_r), torch.stack(rejected_r)
    dpo = -F.logsigmoid(chosen - rejected)
    delta = torch.cat((chosen, rejected)).mean()  # the first batch: the running baseline is this batch's mean
    bco = -F.logsigmoid(chosen - delta) - F.logsigmoid(-(rejected - delta))
    return ((dpo + bco_weight * bco) / (1 + bco_weight)).mean().item()


def test_plain_dpo_matches_the_hand_computation(tiny_model_dir, tmp_path):
    loss, policy, ref, _ = _loss_and_models(tiny_model_dir, tmp_path)
    assert loss == pytest.approx(_by_hand(policy, ref), rel=1e-4)


def test_pref_bco_weight_mixes_lf_bco_loss(tiny_model_dir, tmp_path):
    loss, policy, ref, trainer = _loss_and_models(tiny_model_dir, tmp_path, pref_bco_weight=0.7)
    expected = _by_hand(policy, ref, bco_weight=0.7)
    assert loss == pytest.approx(expected, rel=1e-4)
    assert abs(expected - _by_hand(policy, ref)) > 0.05  # the BCO share moves the loss
    assert trainer.bco.count == 1 and trainer.bco.baseline != 0.0


def test_ld_alpha_weights_the_policy_tail(tiny_model_dir, tmp_path):
    loss, policy, ref, _ = _loss_and_models(tiny_model_dir, tmp_path, ld_alpha=0.3)
    expected = _by_hand(policy, ref, ld_alpha=0.3)
    assert loss == pytest.approx(expected, rel=1e-4)
    assert abs(expected - _by_hand(policy, ref)) > 0.05  # the tail weight moves the loss


def test_bco_and_ld_alpha_train_a_lora_run(stage_runner):
    records = stage_runner(pref_bco_weight=0.5, ld_alpha=0.5)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(0 < r["loss"] < 10 for r in records)
    assert records[-1]["rewards/margins"] > records[0]["rewards/margins"]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"pref_loss": "simpo", "pref_bco_weight": 0.5}, "pref_loss simpo has none"),
        ({"ld_alpha": 1.5}, "ld_alpha 1.5 is outside [0, 1]"),
        ({"stage": "sft", "ld_alpha": 0.5}, "'ld_alpha' is a setting of stage dpo"),
    ],
)
def test_bad_combinations_are_refused(tiny_model_dir, tmp_path, keys, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_stage(_cfg(tiny_model_dir, tmp_path, **keys))  # what `tuneforge train` checks first


@pytest.fixture
def stage_runner(tiny_model_dir, tmp_path):
    """A 4-step LoRA dpo run on pairs where one answer is always right; its trainer_log.jsonl records."""
    import json

    from tuneforge.train.run import run_training
    from tuneforge.utils.run_folder import read_records

    folder = tmp_path / "data"
    folder.mkdir()
    rows = [
        {
            "conversations": [{"from": "human", "value": q}],
            "chosen": {"from": "gpt", "value": "Sure, happy to help: good answer."},
            "rejected": {"from": "gpt", "value": "no"},
        }
        for q in ("Name a fruit.", "Say hello.", "Count to three.", "Pick a number.")
    ]
    (folder / "pairs.json").write_text(json.dumps(rows), encoding="utf-8")
    info = {
        "pairs": {
            "file_name": "pairs.json",
            "formatting": "sharegpt",
            "ranking": True,
            "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
        }
    }
    (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")

    def run(**keys):
        cfg = {
            "model_name_or_path": str(tiny_model_dir),
            "stage": "dpo",
            "dataset": "pairs",
            "dataset_dir": str(folder),
            "template": "qwen",
            "finetuning_type": "lora",
            "cutoff_len": 64,
            "output_dir": str(tmp_path / "run"),
            "per_device_train_batch_size": 2,
            "max_steps": 4,
            "logging_steps": 1,
            "learning_rate": 1e-2,
            "lr_scheduler_type": "constant",
            "seed": 0,
            "disable_tqdm": True,
            **keys,
        }
        return [r for r in read_records(run_training(load_config(None, cfg))) if "loss" in r]

    return run
