"""Every numeric key's range is checked when the config loads, before any model or data: one line naming the key."""

from __future__ import annotations

import pytest

from tuneforge.config import load_config
from tuneforge.config.loader import known_keys
from tuneforge.config.ranges import RANGES
from tuneforge.errors import UserError

BAD = [
    ("per_device_train_batch_size", 0),
    ("per_device_eval_batch_size", -2),
    ("gradient_accumulation_steps", 0),
    ("num_train_epochs", 0),
    ("max_steps", 0),
    ("max_steps", -5),
    ("learning_rate", -1e-4),
    ("learning_rate", 0),
    ("warmup_ratio", 1.0),  # LLaMA-Factory's key: a ratio, which 1.0 as warmup_steps would not be
    ("warmup_steps", -1),
    ("max_grad_norm", -1),
    ("logging_steps", 0),
    ("save_steps", 0),
    ("save_total_limit", 0),
    ("val_size", 1.5),
    ("val_size", -0.1),
    ("cutoff_len", 1),
    ("max_samples", 0),
    ("lora_rank", 0),
    ("lora_alpha", 0),
    ("lora_dropout", 1.0),
    ("adam_beta2", 1.0),
    ("top_p", 0),
    ("num_beams", 0),
    ("max_new_tokens", 0),
    ("freeze_trainable_layers", 0),
]
GOOD = [
    ("val_size", 0.1),
    ("val_size", 200),  # a whole number of samples
    ("max_steps", -1),
    ("max_steps", 3),
    ("max_grad_norm", 0),  # no clipping
    ("warmup_steps", 0.1),  # transformers 5: a float < 1 is a ratio of the steps
    ("freeze_trainable_layers", -2),  # the first two layers
    ("num_train_epochs", 0.5),
]


def method_for(key: str) -> list[str]:
    return ["finetuning_type=freeze"] if key.startswith("freeze_") else []


@pytest.mark.parametrize(("key", "value"), BAD, ids=[f"{k}={v}" for k, v in BAD])
def test_out_of_range_values_are_one_line_naming_the_key(key, value):
    with pytest.raises(UserError) as err:
        load_config(None, [*method_for(key), f"{key}={value}"])
    assert err.value.message.startswith(f"{key} must be ") and err.value.where == key
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("key", "value"), GOOD, ids=[f"{k}={v}" for k, v in GOOD])
def test_values_at_the_edges_of_their_ranges_load(key, value):
    cfg = load_config(None, [*method_for(key), f"{key}={value}"])
    assert cfg.given[key] == value


def test_the_range_of_a_key_in_a_yaml_file_names_its_line(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("stage: sft\nper_device_train_batch_size: 0\n")
    with pytest.raises(UserError) as err:
        load_config(path)
    assert err.value.where == f"{path}:2 (per_device_train_batch_size)"


def test_every_range_is_for_a_key_of_the_schema():
    assert set(RANGES) <= set(known_keys())
