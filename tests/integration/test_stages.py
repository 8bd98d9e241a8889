"""Every stage × method on the tiny model: what matters per stage, plus one clear error per unsupported combination.

pt: the loss falls · rm: held-out pairs ranked right above chance · dpo (each pref_loss), kto: the chosen-minus-
rejected reward margin grows · ppo: steps complete and the mean reward rises. Runs are a few steps each.
"""

from __future__ import annotations

import json

import pytest

from bandit_reward import build_bandit_reward_model
from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.train.run import run_training

GOOD, BAD = "Sure, happy to help: good answer.", "no no no bad"
QUESTIONS = [
    "Name a fruit.",
    "Say hello.",
    "What colour is the sky?",
    "Count to three.",
    "Name an animal.",
    "Give me a word.",
    "你好吗？",
    "Pick a number.",
]
HELD_OUT = ["Name a city.", "Tell me a joke.", "What day is it?", "说一个数字。"]
LR = {"lora": 1e-2, "freeze": 3e-3, "full": 1e-3}


def _pairs(questions):
    return [
        {
            "conversations": [{"from": "human", "value": q}],
            "chosen": {"from": "gpt", "value": GOOD},
            "rejected": {"from": "gpt", "value": BAD},
        }
        for q in questions
    ]


@pytest.fixture(scope="module")
def stage_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stage-data")
    kto = [
        {
            "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": GOOD if i % 2 else BAD}],
            "label": bool(i % 2),
        }
        for i, q in enumerate(QUESTIONS * 2)
    ]
    texts = ["the cat sat on the mat and the dog sat on the log. " * 3, "one two three four five six seven. " * 3]
    files = {
        "pairs.json": _pairs(QUESTIONS),
        "kto.json": kto,
        "text.json": [{"text": t} for t in texts * 4],
        "prompts.json": [{"instruction": q} for q in QUESTIONS],
        "sft.json": [{"instruction": q, "output": GOOD} for q in QUESTIONS],
    }
    for name, rows in files.items():
        (folder / name).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    info = {
        "pairs": {
            "file_name": "pairs.json",
            "formatting": "sharegpt",
            "ranking": True,
            "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
        },
        "kto": {
            "file_name": "kto.json",
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "kto_tag": "label"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
        },
        "text": {"file_name": "text.json", "columns": {"prompt": "text"}},
        "prompts": {"file_name": "prompts.json", "columns": {"prompt": "instruction"}},
        "sft": {"file_name": "sft.json", "columns": {"prompt": "instruction", "response": "output"}},
    }
    (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return folder


@pytest.fixture
def stage_cfg(tiny_model_dir, stage_data, tmp_path):
    def make(stage: str, method: str = "lora", **extra) -> dict:
        cfg = {
            "model_name_or_path": str(tiny_model_dir),
            "stage": stage,
            "dataset": {"pt": "text", "sft": "sft", "rm": "pairs", "dpo": "pairs", "kto": "kto", "ppo": "prompts"}[
                stage
            ],
            "dataset_dir": str(stage_data),
            "template": "qwen",
            "finetuning_type": method,
            "cutoff_len": 64,
            "output_dir": str(tmp_path / f"{stage}-{method}"),
            "per_device_train_batch_size": 4,
            "max_steps": 6,
            "logging_steps": 1,
            "save_steps": 100,
            "learning_rate": LR[method],
            "lr_scheduler_type": "constant",
            "seed": 0,
            "disable_tqdm": True,
        }
        if method == "freeze":
            cfg["freeze_trainable_layers"] = 1
        cfg.update(extra)
        return cfg

    return make


def read_log(out) -> list[dict]:
    return [json.loads(line) for line in (out / "trainer_log.jsonl").read_text(encoding="utf-8").splitlines()]


def first_last(records, key, n=2):
    values = [r[key] for r in records if r.get(key) is not None]
    return sum(values[:n]) / n, sum(values[-n:]) / n


def check_run_folder(out) -> None:
    assert (out / "config.yaml").is_file() and (out / "train_results.json").is_file()
    assert (out / "training_loss.png").is_file()
    assert (out / "adapter_config.json").is_file() or (out / "config.json").is_file()


@pytest.fixture(scope="module")
def reward_run(tiny_model_dir, stage_data, tmp_path_factory):
    """A trained LoRA reward model (what users bring): the PPO resume test continues its curve exactly."""
    out = tmp_path_factory.mktemp("rm-for-ppo") / "rm"
    cfg = {
        "model_name_or_path": str(tiny_model_dir),
        "stage": "rm",
        "dataset": "pairs",
        "dataset_dir": str(stage_data),
        "template": "qwen",
        "finetuning_type": "lora",
        "cutoff_len": 64,
        "output_dir": str(out),
        "per_device_train_batch_size": 4,
        "max_steps": 6,
        "learning_rate": 1e-2,
        "lr_scheduler_type": "constant",
        "seed": 0,
        "disable_tqdm": True,
        "train_sampling_strategy": "random",  # 6 steps see 24 pairs
        "logging_steps": 1,
    }
    return run_training(load_config(None, cfg))


# ---- the case table --------------------------------------------------------------------------------------------
CASES = [
    ("pt", "full", {}),
    ("pt", "freeze", {}),
    ("pt", "lora", {}),
    ("rm", "full", {}),
    ("rm", "freeze", {}),  # the new score head is trained by every method
    ("rm", "lora", {}),
    ("dpo", "lora", {"pref_loss": "sigmoid"}),
    ("dpo", "lora", {"pref_loss": "ipo"}),
    ("dpo", "lora", {"pref_loss": "hinge", "ref_model": "<base>"}),  # an explicit reference model
    ("dpo", "lora", {"pref_loss": "orpo"}),
    ("dpo", "lora", {"pref_loss": "simpo"}),
    ("dpo", "lora", {"pref_loss": "sigmoid", "pref_ftx": 0.5, "dpo_label_smoothing": 0.1}),
    ("dpo", "full", {"pref_loss": "sigmoid"}),
    ("dpo", "freeze", {"pref_loss": "simpo"}),
    ("kto", "full", {}),
    ("kto", "freeze", {}),
    ("kto", "lora", {}),
]


@pytest.mark.parametrize(
    ("stage", "method", "extra"), CASES, ids=[f"{s}-{m}-{'-'.join(map(str, e.values()))}" for s, m, e in CASES]
)
def test_stage_case(stage, method, extra, stage_cfg, tiny_model_dir):
    extra = {k: str(tiny_model_dir) if v == "<base>" else v for k, v in extra.items()}
    out = run_training(load_config(None, stage_cfg(stage, method, **extra)))
    check_run_folder(out)
    records = read_log(out)
    assert [r["step"] for r in records] == list(range(1, 7))
    if stage == "pt":
        first, last = first_last(records, "loss")
        assert last < 0.8 * first, records
    elif stage == "rm":
        assert held_out_accuracy(out) >= 0.75
        assert first_last(records, "accuracy")[1] == 1.0
    else:  # dpo, kto
        first, last = first_last(records, "rewards/margins")
        assert last > first + 0.05, [r["rewards/margins"] for r in records]
        assert last > 0


def held_out_accuracy(out) -> float:
    """The saved reward model (loaded as chat/api would) ranks unseen prompts' answers."""
    import torch

    from tuneforge.model.reward import load_reward_model

    model, tokenizer = load_reward_model(out)
    right = 0
    for q in HELD_OUT:
        scores = []
        for answer in (GOOD, BAD):
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": q}, {"role": "assistant", "content": answer}], tokenize=False
            )
            with torch.no_grad():
                scores.append(model(**tokenizer(text, return_tensors="pt")).logits[0, 0].item())
        right += scores[0] > scores[1]
    return right / len(HELD_OUT)


def test_rm_full_saves_a_plain_sequence_classifier(stage_cfg):
    from transformers import AutoModelForSequenceClassification

    out = run_training(load_config(None, stage_cfg("rm", "full", max_steps=2)))
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.num_labels == 1 and model.config.pad_token_id is not None


@pytest.fixture(scope="module")
def bandit_reward(tiny_model_dir, tmp_path_factory):
    """A reward model exact by construction (tests/bandit_reward.py): +1 for a "good" last token, -1 otherwise."""
    folder, _ = build_bandit_reward_model(tiny_model_dir, tmp_path_factory.mktemp("bandit-rm") / "rm")
    return folder


@pytest.mark.parametrize(("method", "lr"), [("lora", 2e-3), ("full", 3e-4)])
def test_ppo_reward_rises(method, lr, stage_cfg, bandit_reward):
    # one sampled token per answer, scored ±1 exactly: the outcome does not hang on a trained reward model's last
    # digits (which move with the CPU's kernels). Measured under ATEN_CPU_CAPABILITY=default/avx2/avx512, seeds
    # 0-2: step 1 scores 0.0 (half the tokens are good), the last three steps 0.67-1.0.
    extra = {
        "reward_model": str(bandit_reward),
        "max_new_tokens": 1,
        "temperature": 0.3,
        "max_steps": 10,
        "per_device_train_batch_size": 8,
        "ppo_epochs": 4,
        "learning_rate": lr,
    }
    out = run_training(load_config(None, stage_cfg("ppo", method, **extra)))
    check_run_folder(out)
    assert (out / "value_head.safetensors").is_file()
    records = read_log(out)
    assert [r["step"] for r in records] == list(range(1, 11))
    rewards = [round(r["mean_reward"], 2) for r in records]
    assert abs(rewards[0]) <= 0.5, rewards  # the untrained policy is near chance
    _, last = first_last(records, "mean_reward", n=3)
    assert last >= rewards[0] + 0.5, rewards
    assert records[-1]["kl"] > 0  # the policy moved away from the reference


def test_ppo_resume_continues_the_curve(stage_cfg, reward_run, tmp_path):
    cfg = stage_cfg(
        "ppo",
        "lora",
        reward_model=str(reward_run),
        max_new_tokens=4,
        max_steps=4,
        save_steps=2,
        output_dir=str(tmp_path / "ppo-a"),
    )
    straight = read_log(run_training(load_config(None, cfg)))
    # an interrupted run: checkpoint-2 exists, no train_results.json, log lines past the checkpoint
    cfg_b = {**cfg, "output_dir": str(tmp_path / "ppo-b")}
    out_b = run_training(load_config(None, cfg_b))
    (out_b / "train_results.json").unlink()
    resumed = read_log(run_training(load_config(None, cfg_b)))  # picks up checkpoint-2
    assert [r["step"] for r in resumed] == [1, 2, 3, 4]
    assert [r["mean_reward"] for r in resumed] == pytest.approx([r["mean_reward"] for r in straight], rel=1e-4)


def test_dpo_resume(stage_cfg, tmp_path):
    cfg = stage_cfg("dpo", "lora", max_steps=4, save_steps=2, output_dir=str(tmp_path / "dpo-a"))
    out = run_training(load_config(None, cfg))
    cfg2 = {**cfg, "output_dir": str(tmp_path / "dpo-b"), "resume_from_checkpoint": str(out / "checkpoint-2")}
    assert [r["step"] for r in read_log(run_training(load_config(None, cfg2)))] == [3, 4]


# ---- unsupported combinations: one clear error each --------------------------------------------------------
ERRORS = [
    ({"stage": "dpo", "dataset": "sft"}, "stage dpo needs pairwise data"),
    ({"stage": "rm", "dataset": "sft"}, "stage rm needs pairwise data"),
    ({"stage": "kto", "dataset": "sft"}, "stage kto needs a kto_tag column"),
    ({"stage": "ppo"}, "stage ppo needs a reward model"),
    ({"stage": "ppo", "reward_model": "/nonexistent/rm"}, "not a reward model folder"),
    ({"stage": "ppo", "reward_model": "x", "reward_model_type": "api"}, "needs reward_model to be the URL"),
    ({"stage": "ppo", "reward_model": "x", "val_size": 0.25}, "stage ppo has no evaluation set"),
    ({"stage": "sft", "dataset": "sft", "pref_loss": "ipo"}, "'pref_loss' is a setting of stage dpo"),
    ({"stage": "dpo", "pref_loss": "orpo", "ref_model": "x"}, "pref_loss orpo needs no reference model"),
    ({"stage": "dpo", "pref_loss": "hinge", "dpo_label_smoothing": 0.1}, "dpo_label_smoothing applies to"),
    ({"stage": "pt", "cutoff_len": 4}, "stage pt packs text"),
]


@pytest.mark.parametrize(("overrides", "message"), ERRORS, ids=[m for _, m in ERRORS])
def test_unsupported_combination(overrides, message, stage_cfg):
    cfg = stage_cfg(overrides.get("stage", "dpo"), "lora")
    cfg.update(overrides)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        run_training(load_config(None, cfg))
    assert "\n" not in str(info.value)
