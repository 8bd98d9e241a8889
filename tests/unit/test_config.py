"""Config parsing: YAML/JSON + overrides, types, LLaMA-Factory keys, unknown keys, cross-field rules."""

from __future__ import annotations

import json

import pytest
import yaml

from tuneforge.config import load_config
from tuneforge.errors import UserError


def write(tmp_path, text, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


LF_CONFIG = """\
### model
model_name_or_path: models/Qwen2.5-7B-Instruct
trust_remote_code: true

### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all

### dataset
dataset: identity,alpaca_en_demo
template: qwen
cutoff_len: 2048
max_samples: 1000
overwrite_cache: true
preprocessing_num_workers: 16

### output
output_dir: saves/qwen2.5-7b/lora/sft
logging_steps: 10
save_steps: 500
plot_loss: true
overwrite_output_dir: true
save_only_model: false
report_to: none

### train
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 1.0e-4
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
ddp_timeout: 180000000
resume_from_checkpoint: null

### eval
val_size: 0.1
per_device_eval_batch_size: 1
eval_strategy: steps
eval_steps: 500
"""


def test_llama_factory_config_loads_as_is(tmp_path):
    cfg = load_config(write(tmp_path, LF_CONFIG))
    assert cfg.model.model_name_or_path == "models/Qwen2.5-7B-Instruct"
    assert cfg.model.trust_remote_code is True
    assert cfg.finetuning.finetuning_type == "lora" and cfg.finetuning.lora_rank == 8
    assert cfg.data.dataset == "identity,alpaca_en_demo" and cfg.data.val_size == 0.1
    assert cfg.finetuning.overwrite_output_dir is True
    assert cfg.training["learning_rate"] == pytest.approx(1e-4)
    assert cfg.training["gradient_accumulation_steps"] == 8
    assert cfg.training["warmup_steps"] == pytest.approx(0.1)  # warmup_ratio → transformers 5's ratio form
    assert cfg.training["bf16"] is True


def test_yaml_reads_exponent_strings_as_floats(tmp_path):
    # PyYAML reads "1e-4" (no dot) as a string; the field type decides.
    cfg = load_config(write(tmp_path, "learning_rate: 1e-4\nlora_dropout: 5e-2\n"))
    assert cfg.training["learning_rate"] == pytest.approx(1e-4)
    assert cfg.finetuning.lora_dropout == pytest.approx(0.05)


def test_json_config_and_overrides(tmp_path):
    path = write(tmp_path, json.dumps({"model_name_or_path": "m", "lora_rank": 4}), "cfg.json")
    cfg = load_config(path, ["lora_rank=16", "finetuning.lora_alpha=8", "data.cutoff_len=512", "train_on_prompt=true"])
    assert cfg.finetuning.lora_rank == 16
    assert cfg.finetuning.lora_alpha == 8
    assert cfg.data.cutoff_len == 512
    assert cfg.data.train_on_prompt is True
    assert cfg.to_dict()["lora_rank"] == 16


def test_nested_groups_are_accepted(tmp_path):
    cfg = load_config(write(tmp_path, "model:\n  model_name_or_path: m\nfinetuning:\n  lora_rank: 32\n"))
    assert cfg.finetuning.lora_rank == 32 and cfg.model.model_name_or_path == "m"


def test_unknown_key_names_line_and_closest_key(tmp_path):
    path = write(tmp_path, "model_name_or_path: m\nlearning_rat: 1e-4\n")
    with pytest.raises(UserError) as err:
        load_config(path)
    text = str(err.value)
    assert f"{path}:2" in text and "'learning_rat'" in text and "did you mean 'learning_rate'" in text


def test_unknown_override_key_is_an_error():
    with pytest.raises(UserError, match="did you mean 'lora_rank'"):
        load_config(None, ["lora_rnak=8"])


def test_bad_value_type_names_field(tmp_path):
    path = write(tmp_path, "lora_rank: eight\n")
    with pytest.raises(UserError, match=r"cfg.yaml:1 \(lora_rank\): expected int"):
        load_config(path)


def test_bad_choice_lists_choices():
    with pytest.raises(UserError, match="'fulll' is not one of: full, freeze, lora"):
        load_config(None, ["finetuning_type=fulll"])


def test_override_must_be_key_value():
    with pytest.raises(UserError, match="not key=value"):
        load_config(None, ["lora_rank"])


def test_override_that_is_not_yaml_stays_text():
    """A name pattern starting with * is a YAML alias: on the command line it means the text as typed."""
    cfg = load_config(None, ["profile_modules=*.layers.0.self_attn,*.mlp", "lora_rank=16"])
    assert cfg.tracking.profile_modules == "*.layers.0.self_attn,*.mlp" and cfg.finetuning.lora_rank == 16


def test_invalid_yaml_names_line(tmp_path):
    path = write(tmp_path, "a: 1\nb: [unclosed\n")
    with pytest.raises(UserError, match="invalid YAML"):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["finetuning_type=lora", "freeze_trainable_layers=2"], "freeze_trainable_layers' has no effect"),
        (["finetuning_type=freeze", "lora_rank=8"], "lora_rank' has no effect"),
        (["finetuning_type=full", "quantization_bit=4"], "quantization_bit needs LoRA"),
        (["finetuning_type=full", "adapter_name_or_path=a"], "adapter_name_or_path is only used"),
        (["val_size=-1"], "val_size must be a ratio in"),
        (["streaming=true"], "streaming needs max_steps"),
        (["compute_type=fp32", "bf16=true"], "either compute_type or bf16"),
        (["booster=unsloth"], "needs the 'unsloth' package"),
    ],
)
def test_cross_field_rules(overrides, message):
    with pytest.raises(UserError, match=message):
        load_config(None, overrides)


def test_secrets_are_masked_in_saved_config():
    cfg = load_config(None, ["hf_hub_token=hf_secret", "model_name_or_path=m"])
    assert cfg.model.hf_hub_token == "hf_secret"
    assert "hf_secret" not in cfg.to_yaml() and "***" in cfg.to_yaml()


def test_every_field_has_help():
    from tuneforge.config.fields import describe
    from tuneforge.config.loader import GROUPS

    for cls in GROUPS.values():
        for field in describe(cls):
            assert field["help"], f"{cls.__name__}.{field['name']} has no help text"


def test_shipped_examples_parse():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "examples"
    # examples/accelerate holds accelerate's own launcher configs, not TuneForge configs; a sweep spec (examples/sweep,
    # `params:`) is checked against its train config in tests/unit/test_sweep_spec.py
    examples = sorted(
        p
        for p in root.rglob("*.yaml")
        if "accelerate" not in p.relative_to(root).parts and "params" not in (yaml.safe_load(p.read_text()) or {})
    )
    assert len(examples) >= 5
    for path in examples:
        load_config(path)


def test_a_masked_secret_in_a_saved_config_loads_as_unset(tmp_path):
    saved = load_config(None, ["hf_hub_token=hf_secret", "model_name_or_path=m"]).to_yaml()
    path = write(tmp_path, saved)
    again = load_config(path)
    assert again.model.hf_hub_token is None and again.model.model_name_or_path == "m"
