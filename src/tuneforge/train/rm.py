"""Reward model: pairwise data (chosen / rejected) → a one-output sequence classifier, TRL's RewardTrainer.

Saved format (what chat/api and ppo load):
- full / freeze: a plain transformers folder, `AutoModelForSequenceClassification.from_pretrained(out)` with
  num_labels=1 (architectures e.g. Qwen2ForSequenceClassification) and `pad_token_id` set; the score is read at the
  last non-pad token.
- lora: a peft adapter folder (task_type SEQ_CLS, the `score` head in modules_to_save), loadable with
  `peft.AutoPeftModelForSequenceClassification.from_pretrained(out)` or `load_reward_model(out)`
  (tuneforge/model/reward.py).
Both folders hold the tokenizer with our template as chat_template, so a scorer renders texts as training did.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.train.arguments import build_training_arguments
from tuneforge.train.common import load_stage_inputs, train_stage

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.train.output_dir import OutputPlan


def run(cfg: RunConfig, plan: OutputPlan) -> Path:
    from trl import RewardConfig, RewardTrainer  # trl: imported by the run that trains, not by `import` of a recipe

    inputs = load_stage_inputs(cfg, "rm", head="score")
    args = build_training_arguments(
        cfg, str(plan.path), cls=RewardConfig, max_length=None, disable_dropout=True, dataset_num_proc=None
    )
    return train_stage(RewardTrainer, cfg, plan, inputs, args)
