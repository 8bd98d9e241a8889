"""Reward model: pairwise data (chosen / rejected) → a one-output sequence classifier, TRL's RewardTrainer.

Saved format (what chat/api and ppo load):
- full / freeze: a plain transformers folder, `AutoModelForSequenceClassification.from_pretrained(out)` with
  num_labels=1 (architectures e.g. Qwen2ForSequenceClassification) and `pad_token_id` set; the score is read at the
  last non-pad token.
- lora: a peft adapter folder (task_type SEQ_CLS, the `score` head in modules_to_save), loadable with
  `peft.AutoPeftModelForSequenceClassification.from_pretrained(out)` or `load_reward_model(out)` below.
Both folders hold the tokenizer with our template as chat_template, so a scorer renders texts as training did.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.train.output_dir import OutputPlan


def run(cfg: RunConfig, plan: OutputPlan) -> Path:
    from trl import RewardConfig, RewardTrainer

    from tuneforge.train.arguments import build_training_arguments
    from tuneforge.train.common import load_stage_inputs, train_stage

    inputs = load_stage_inputs(cfg, "rm", head="score")
    args = build_training_arguments(
        cfg, str(plan.path), cls=RewardConfig, max_length=None, disable_dropout=True, dataset_num_proc=None
    )
    return train_stage(RewardTrainer, cfg, plan, inputs, args)


def load_reward_model(path: str | Path, dtype=None, adapters: list[str] | None = None):
    """(model, tokenizer) of an rm run folder — a full sequence-classification model or a LoRA adapter on its base —
    in eval mode, with any further `adapters` (SEQ_CLS LoRA folders) merged in order.
    `model(input_ids, attention_mask).logits[:, 0]` is the reward."""
    import json

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tuneforge.errors import UserError

    path = Path(path)
    adapter = path / "adapter_config.json"
    if not (path / "config.json").is_file() and not adapter.is_file():
        raise UserError(
            "not a reward model folder (no config.json or adapter_config.json)",
            where=f"reward_model ({path})",
            fix="point it at the output_dir of a stage: rm run",
        )
    kwargs = {"dtype": dtype} if dtype is not None else {}
    if adapter.is_file():
        from peft import PeftModel

        info = json.loads(adapter.read_text(encoding="utf-8"))
        if info.get("task_type") != "SEQ_CLS":
            raise UserError(
                f"adapter task_type is {info.get('task_type')}, not a reward model (SEQ_CLS)",
                where=f"reward_model ({path})",
                fix="point it at the output_dir of a stage: rm run",
            )
        base = AutoModelForSequenceClassification.from_pretrained(
            info["base_model_name_or_path"], num_labels=1, **kwargs
        )
        model = PeftModel.from_pretrained(base, path).merge_and_unload()
    else:
        model = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
        if model.config.num_labels != 1:
            raise UserError(
                f"the model has num_labels={model.config.num_labels}; a reward model has one output",
                where=f"reward_model ({path})",
                fix="point it at the output_dir of a stage: rm run",
            )
    for extra in adapters or []:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, extra).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model.config.pad_token_id = tokenizer.pad_token_id  # as in training: the score is read before padding
    return model.eval(), tokenizer
