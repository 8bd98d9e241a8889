"""LLaMA-Factory 0.9.5's vision examples (tests/fixtures/lf_examples_vision, unchanged copies) run on the tiny
Qwen3-VL in a folder laid out like LF's checkout: its data/ with LF's mllm_demo (pictures included) beside our
identity and alpaca_en_demo. Only the model path and the number of steps change (and DPO's hub dataset)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tuneforge.cli import main
from tuneforge.config.loader import load_config
from tuneforge.data.loader import get_sft_datasets
from tuneforge.train.common import load_tokenizer_and_template

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "tests" / "fixtures" / "lf_examples_vision"
LF_DEMO = ROOT / "tests" / "fixtures" / "lf_mllm_demo"


@pytest.fixture
def lf_checkout(tmp_path, monkeypatch):
    """data/ as LF ships it for these examples: mllm_demo, identity, alpaca_en_demo (and our shapes pairs)."""
    data = tmp_path / "data"
    data.mkdir()
    info = json.loads((ROOT / "data" / "dataset_info.json").read_text(encoding="utf-8"))
    info |= json.loads((LF_DEMO / "dataset_info.json").read_text(encoding="utf-8"))
    (data / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    for name in ("identity.json", "alpaca_en_demo.json", "shapes_demo_dpo.json", "shapes_demo"):
        (data / name).symlink_to(ROOT / "data" / name)
    shutil.copy(LF_DEMO / "mllm_demo.json", data)
    (data / "mllm_demo_data").symlink_to(LF_DEMO / "mllm_demo_data")
    monkeypatch.chdir(tmp_path)  # LF's examples write to saves/... and read data/ from where they run
    return tmp_path


def test_qwen3vl_lora_sft_runs_on_mllm_demo_with_its_pictures(lf_checkout, tiny_vlm_dir):
    model = tiny_vlm_dir("qwen3_vl")
    config = EXAMPLES / "qwen3vl_lora_sft.yaml"
    assert main(["train", str(config), f"model_name_or_path={model}", "max_steps=2"]) == 0
    out = lf_checkout / "saves" / "qwen3-vl-4b" / "lora" / "sft"
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert all(t.startswith("model.language_model.") for t in adapter["target_modules"])  # the tower stays frozen
    assert (out / "preprocessor_config.json").is_file() and (out / "train_results.json").is_file()
    # mllm_demo's six rows trained with their pictures: each row's references, its image tokens in the ids
    cfg = load_config(str(config), {"model_name_or_path": str(model), "dataset": "mllm_demo"})
    tokenizer, template = load_tokenizer_and_template(cfg)
    train, _ = get_sft_datasets(cfg.data, template, tokenizer)
    assert len(train) == 6 and all(refs for refs in train["image_refs"])
    image_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert all(image_id in ids for ids in train["input_ids"])


def test_qwen3vl_lora_dpo_runs_on_pairs_with_pictures(lf_checkout, tiny_vlm_dir):
    model = tiny_vlm_dir("qwen3_vl")
    argv = [f"model_name_or_path={model}", "max_steps=2", "dataset=shapes_demo_dpo"]
    assert main(["train", str(EXAMPLES / "qwen3vl_lora_dpo.yaml"), *argv]) == 0
    out = lf_checkout / "saves" / "qwen3-vl-4b" / "lora" / "dpo"
    assert (out / "adapter_model.safetensors").is_file()
    assert os.path.getsize(out / "adapter_model.safetensors") > 0
