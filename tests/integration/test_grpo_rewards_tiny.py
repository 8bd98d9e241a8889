"""Feasibility of GRPO on the tiny model, before the `grpo` stage exists: TRL's GRPOTrainer + a peft LoRA, prompts
written by our `qwen` template, our built-in `length` reward. Within ~10 CPU-seconds per run (40 steps) the mean
reward rises clearly, for loss_type grpo, dapo and GSPO (importance_sampling_level sequence).

Why these settings (measured on 2 cores, one torch thread; numbers in the issue-17 note):
- The tiny model is random: its next-token distribution is nearly uniform (entropy ~7.8 nats of 8.3). A LoRA on its
  linear layers cannot move that much at temperature 1 (the lm_head rows are small), so the reward barely moves;
  at temperature 0.3 the logits are scaled by 3.3 and the policy sharpens within a few steps.
- EOS is never sampled, so every completion is max_completion_length tokens: the `length` reward counts characters
  (target 12 for 8 tokens), which the model controls by picking short tokens. A target the policy overshoots
  everywhere (-1.0, the reward's floor, for every completion) leaves no variance to learn from: target 10 collapsed
  so once in 9 runs, target 12 never did; a lower learning rate (1e-2, not 2e-2) avoids the same collapse.
- num_iterations 2 reuses each generation for a second, off-policy step: without it the ratio is exactly 1 and
  grpo, dapo and GSPO give the same gradients for equal-length completions (identical curves).
- TRL's GRPOConfig defaults bf16=True and gradient_checkpointing=True: both off here (fp32, speed).
"""

from __future__ import annotations

import pytest

from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.template import get_template
from tuneforge.train.rewards import RewardSettings, build_reward_funcs

QUESTIONS = ["Who are you?", "你是谁？", "Add 2 and 3.", "Name a colour.", "What is your name?", "Translate hello."]
QUESTIONS += ["你叫什么名字？", "Count to three."]
CASES = {
    "grpo": {"loss_type": "grpo"},
    "dapo": {"loss_type": "dapo", "epsilon_high": 0.28},
    "gspo": {"loss_type": "grpo", "importance_sampling_level": "sequence"},
}
STEPS = 40  # = 20 generation rounds with num_iterations 2
TARGET = 12  # characters; 8 random tokens are ~20 (reward ~-0.6), 12 is reachable with one-character tokens
# The mean of the last 5 rounds' rewards minus the first 3 rounds', over 9 runs (seeds 0-1-2 x 3 cases): 0.22 to
# 0.67 (seed 0: grpo 0.55, dapo 0.56, gspo 0.67).
MARGIN = 0.15


def grpo_run(model_dir, out_dir, seed: int = 0, **overrides) -> tuple[list[dict], dict]:
    """Train; return the trainer's log history and what the reward function was called with."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    template = get_template("qwen", tokenizer)
    convs = [Conversation(messages=[Message("user", q)]) for q in QUESTIONS]
    prompts = [template.render(tokenizer, c) for c in convs]
    # TRL tokenizes text prompts with tokenizer(text): the ids must be the template's own
    assert [tokenizer(p)["input_ids"] for p in prompts] == [template.encode_prompt(tokenizer, c) for c in convs]
    dataset = Dataset.from_dict({"prompt": prompts * 8, "answer": [str(i) for i in range(len(prompts) * 8)]})

    (length,) = build_reward_funcs("length", RewardSettings(target_length=TARGET, length_unit="chars"))
    seen: dict = {"prompts": prompts}

    def length_reward(prompts, completions, **kwargs):
        seen.setdefault("kwargs", {k: type(v).__name__ for k, v in kwargs.items()})
        seen.setdefault("completion", completions[0])
        seen.setdefault("ids", (kwargs["completion_ids"][0], kwargs["answer"][0], prompts[0]))
        return length(prompts, completions, **kwargs)

    settings = {
        "num_generations": 4,
        "per_device_train_batch_size": 8,  # 2 prompts x 4 generations per step
        "max_completion_length": 8,
        "temperature": 0.3,
        "learning_rate": 1e-2,
        "num_iterations": 2,
        "beta": 0.0,
        **overrides,
    }
    args = GRPOConfig(
        output_dir=str(out_dir),
        max_steps=STEPS,
        lr_scheduler_type="constant",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        disable_tqdm=True,
        seed=seed,
        **settings,
    )
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    lora = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", lora_dropout=0.0)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=length_reward,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora,
    )
    trainer.train()
    seen["tokenizer"] = tokenizer
    return trainer.state.log_history, seen


def reward_means(history: list[dict]) -> list[float]:
    return [log["reward"] for log in history if "reward" in log]


@pytest.mark.parametrize("case", list(CASES))
def test_length_reward_rises_on_the_tiny_model(tiny_model_dir, tmp_path, case):
    history, seen = grpo_run(tiny_model_dir, tmp_path / case, **CASES[case])
    rewards = reward_means(history)
    assert len(rewards) == STEPS // 2  # a reward per generation round
    first, last = sum(rewards[:3]) / 3, sum(rewards[-5:]) / 5
    assert last > first + MARGIN, rewards

    # what TRL passes a reward function: text completions for text prompts, the other columns, its own extras
    assert seen["kwargs"] == {
        "answer": "list",
        "completion_ids": "list",
        "trainer_state": "TrainerState",
        "log_extra": "method",
        "log_metric": "method",
    }
    ids, answer, prompt = seen["ids"]
    assert isinstance(seen["completion"], str) and prompt.endswith("<|im_start|>assistant\n")
    assert prompt == seen["prompts"][int(answer) % len(QUESTIONS)]  # each completion comes with its own row's columns
    assert seen["tokenizer"].decode(ids, skip_special_tokens=True) == seen["completion"]

    # the metrics the stage will write to trainer_log.jsonl
    logged = set().union(*(log.keys() for log in history if "reward" in log))
    assert {"reward", "reward_std", "rewards/length_reward/mean", "rewards/length_reward/std"} <= logged
    assert {"completions/mean_length", "completions/clipped_ratio", "frac_reward_zero_std", "entropy"} <= logged
    assert {"clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean", "loss", "step_time"} <= logged
    assert "kl" not in logged  # beta 0: no reference model, no KL
