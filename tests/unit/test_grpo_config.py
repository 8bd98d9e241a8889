"""stage: grpo's settings: each bad one is one line naming the key and the fix, before anything loads; the good ones
reach TRL's GRPOConfig (sampling defaults included)."""

from __future__ import annotations

import pytest
import yaml
from datasets import Dataset

from tuneforge.config import load_config
from tuneforge.config.validate import check_stage
from tuneforge.errors import UserError
from tuneforge.model.estimate import _batch_tokens
from tuneforge.train.grpo import grpo_settings, prompt_rows

BASE = {"model_name_or_path": "some/model", "template": "qwen", "dataset": "math_demo", "stage": "grpo"}


def _cfg(tmp_path, **keys):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({**BASE, "reward_funcs": "accuracy", **keys}, sort_keys=False), encoding="utf-8")
    return load_config(str(path))


def _error(tmp_path, **keys) -> str:
    with pytest.raises(UserError) as info:
        check_stage(_cfg(tmp_path, **keys))
    return str(info.value)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"reward_funcs": None}, "stage grpo needs at least one reward function"),
        ({"reward_funcs": "acuracy"}, "unknown reward function 'acuracy' — did you mean 'accuracy'?"),
        ({"reward_funcs": "accuracy,accuracy"}, "reward_funcs names a reward twice"),
        ({"reward_funcs": "reward_model"}, "reward_funcs names reward_model, but no reward_model is set"),
        ({"reward_weights": "1,2"}, "reward_weights has 2 weights for 1 rewards"),
        ({"reward_weights": "x"}, "reward_weights must be numbers, got 'x'"),
        ({"reward_model": "rm", "reward_weights": "1"}, "reward_weights has 1 weights for 2 rewards"),
        ({"max_new_tokens": 64}, "max_new_tokens does not apply to stage grpo — use max_completion_length"),
        ({"num_beams": 2}, "num_beams does not apply to stage grpo"),
        ({"do_sample": False}, "stage grpo samples its completions"),
        ({"temperature": 0}, "stage grpo samples: temperature must be > 0"),
        ({"num_generations": 1}, "num_generations must be at least 2"),
        ({"epsilon_high": 0.1}, "epsilon_high (0.1) is below epsilon (0.2)"),
        ({"length_reward_target": 64}, "length_reward_target sets the length reward — add length to reward_funcs"),
        ({"vllm_mode": "server"}, "vllm_mode applies with use_vllm: true"),
        ({"use_vllm": True}, "use_vllm needs the vllm package"),
        ({"reward_model_type": "lora"}, "reward_model_type needs reward_model"),
        ({"reward_model": "rm", "reward_model_type": "lora"}, "the policy must be LoRA too"),
    ],
)
def test_bad_grpo_settings_are_one_line_naming_the_key(tmp_path, keys, expected):
    message = _error(tmp_path, finetuning_type="full" if "reward_model_type" in keys else "lora", **keys)
    assert expected in message and "\n" not in message
    assert "cfg.yaml:" in message  # the file and line of the key


def test_grpo_keys_belong_to_grpo(tmp_path):
    message = _error(tmp_path, stage="sft", num_generations=4, reward_funcs=None)
    assert "'num_generations' is a setting of stage grpo; this run is stage sft" in message, message


def test_settings_reach_grpo_config(tmp_path):
    cfg = _cfg(
        tmp_path,
        reward_funcs="accuracy, format",
        reward_weights="1, 0.5",
        loss_type="dr_grpo",
        importance_sampling_level="sequence",
        epsilon_high=0.28,
        scale_rewards="none",
        mask_truncated_completions=True,
        num_iterations=2,
        beta=0.04,
        top_p=0.9,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
    )
    check_stage(cfg)
    settings = grpo_settings(cfg)
    assert settings["reward_weights"] == [1.0, 0.5]
    assert settings["loss_type"] == "dr_grpo" and settings["importance_sampling_level"] == "sequence"
    assert settings["epsilon_high"] == 0.28 and settings["scale_rewards"] == "none"
    assert settings["mask_truncated_completions"] and settings["num_iterations"] == 2 and settings["beta"] == 0.04
    # sampling: what the user set, else TRL's on-policy defaults (not chat's 0.95 / 0.7)
    assert (settings["temperature"], settings["top_p"], settings["top_k"]) == (1.0, 0.9, 0)


def test_generation_batch_must_hold_whole_groups(tmp_path):
    cfg = _cfg(tmp_path, num_generations=8, per_device_train_batch_size=4)
    with pytest.raises(UserError, match=r"does not hold whole groups of num_generations=8"):
        grpo_settings(cfg)
    assert grpo_settings(cfg, world_size=2)["num_generations"] == 8  # 4 x 2 processes: one group per step


def test_memory_estimate_counts_prompt_plus_completion(tmp_path):
    cfg = _cfg(tmp_path, max_prompt_length=256, max_completion_length=1024, per_device_train_batch_size=8)
    assert _batch_tokens(cfg) == (8, 1280)  # completions per device, each prompt + completion long
    assert _batch_tokens(_cfg(tmp_path, cutoff_len=512, max_completion_length=64)) == (2, 576)  # prompt: cutoff_len


def test_max_prompt_length_keeps_the_end_of_a_prompt(tiny_tokenizer):
    """TRL's rows: the prompt's last max_prompt_length ids, and the text rewards see decoded from exactly those."""
    ids = tiny_tokenizer("<|im_start|>user\nAdd 2 and 3, please.<|im_end|>\n<|im_start|>assistant\n")["input_ids"]
    rows = prompt_rows(Dataset.from_dict({"input_ids": [ids], "answer": ["5"]}), tiny_tokenizer, 6)
    assert rows[0]["prompt_ids"] == ids[-6:] and rows[0]["answer"] == "5"
    assert rows[0]["prompt"] == tiny_tokenizer.decode(ids[-6:]) and rows[0]["prompt"].endswith("assistant\n")
    assert prompt_rows(None, tiny_tokenizer, 6) is None  # no evaluation set
