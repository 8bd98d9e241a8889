"""Load the reward model an `rm` run saved: what PPO scores with and what chat / api serve (`/v1/score`).

The saved format (train/rm.py): full / freeze, a plain transformers folder (`AutoModelForSequenceClassification`
with num_labels=1, `pad_token_id` set; the score is read at the last non-pad token); lora, a peft adapter folder
(task_type SEQ_CLS, the `score` head in modules_to_save) that names its base.
"""

from __future__ import annotations

import json
from pathlib import Path

from tuneforge.errors import UserError

ADAPTER_CONFIG = "adapter_config.json"  # peft's
MODEL_CONFIG = "config.json"  # transformers'
NOT_A_REWARD_MODEL_FIX = "point it at the output_dir of a stage: rm run"


def is_reward_adapter(path: str | Path) -> bool:
    """The folder holds a LoRA adapter of a reward model (peft task_type SEQ_CLS)."""
    config = Path(path) / ADAPTER_CONFIG
    return config.is_file() and json.loads(config.read_text(encoding="utf-8")).get("task_type") == "SEQ_CLS"


def load_reward_model(path: str | Path, dtype=None, adapters: list[str] | None = None, quantization_config=None):
    """(model, tokenizer) of an rm run folder — a full sequence-classification model or a LoRA adapter on its base —
    in eval mode, with any further `adapters` (SEQ_CLS LoRA folders) merged in order. `quantization_config` (a
    transformers BitsAndBytesConfig) loads the weights quantized; the adapters then stay unmerged.
    `model(input_ids, attention_mask).logits[:, 0]` is the reward."""
    # transformers / peft: loaded only when a reward model is (start-up time)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(path)
    adapter = path / ADAPTER_CONFIG
    if not (path / MODEL_CONFIG).is_file() and not adapter.is_file():
        raise UserError(
            "not a reward model folder (no config.json or adapter_config.json)",
            where=f"reward_model ({path})",
            fix=NOT_A_REWARD_MODEL_FIX,
        )
    kwargs = {"dtype": dtype} if dtype is not None else {}
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    if adapter.is_file():
        from peft import PeftModel

        info = json.loads(adapter.read_text(encoding="utf-8"))
        if info.get("task_type") != "SEQ_CLS":
            raise UserError(
                f"adapter task_type is {info.get('task_type')}, not a reward model (SEQ_CLS)",
                where=f"reward_model ({path})",
                fix=NOT_A_REWARD_MODEL_FIX,
            )
        base = AutoModelForSequenceClassification.from_pretrained(
            info["base_model_name_or_path"], num_labels=1, **kwargs
        )
        model = _with_adapter(PeftModel.from_pretrained(base, path), quantization_config)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
        if model.config.num_labels != 1:
            raise UserError(
                f"the model has num_labels={model.config.num_labels}; a reward model has one output",
                where=f"reward_model ({path})",
                fix=NOT_A_REWARD_MODEL_FIX,
            )
    for extra in adapters or []:
        from peft import PeftModel

        if isinstance(model, PeftModel):  # only a quantized base keeps its adapter unmerged
            raise UserError(
                "a quantized reward model takes one adapter (LLaMA-Factory's rule too)",
                where="reward_model_adapters",
                fix="merge the adapters first (tuneforge export), or remove reward_model_quantization_bit",
            )
        model = _with_adapter(PeftModel.from_pretrained(model, extra), quantization_config)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model.config.pad_token_id = tokenizer.pad_token_id  # as in training: the score is read before padding
    return model.eval(), tokenizer


def _with_adapter(peft_model, quantization_config):
    """Merged into plain weights; on a quantized base kept as an adapter (merging would re-quantize the sum)."""
    return peft_model if quantization_config is not None else peft_model.merge_and_unload()
