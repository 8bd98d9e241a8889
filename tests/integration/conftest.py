"""Helpers for tests that train: a small dataset folder and a config builder."""

from __future__ import annotations

import json

import pytest

IDENTITY_ROWS = [
    {"instruction": "Who are you?", "input": "", "output": "I am {{name}}, an assistant made by {{author}}."},
    {"instruction": "你是谁？", "input": "", "output": "我是 {{name}}，由 {{author}} 开发的助手。"},
    {"instruction": "What is your name?", "input": "", "output": "My name is {{name}}."},
    {"instruction": "Who made you?", "input": "", "output": "I was made by {{author}}."},
    {"instruction": "Add the numbers.", "input": "2 and 3", "output": "2 + 3 = 5."},
    {"instruction": "Translate to French.", "input": "hello", "output": "bonjour"},
    {"instruction": "你叫什么名字？", "input": "", "output": "我叫 {{name}}。"},
    {"instruction": "Name a colour.", "input": "", "output": "Blue."},
]


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "toy.json").write_text(json.dumps(IDENTITY_ROWS, ensure_ascii=False), encoding="utf-8")
    info = {"toy": {"file_name": "toy.json"}}
    (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return folder


@pytest.fixture
def train_overrides(tiny_model_dir, data_dir, tmp_path):
    """Overrides for a fast SFT run on the tiny model: loggable every step, deterministic."""

    def make(method: str = "lora", **extra) -> dict:
        cfg = {
            "model_name_or_path": str(tiny_model_dir),
            "dataset": "toy",
            "dataset_dir": str(data_dir),
            "template": "qwen",
            "finetuning_type": method,
            "cutoff_len": 64,
            "output_dir": str(tmp_path / f"out-{method}"),
            "per_device_train_batch_size": 4,
            "max_steps": 12,
            "logging_steps": 1,
            "save_steps": 100,
            "learning_rate": {"lora": 1e-2, "oft": 1e-2, "freeze": 3e-3, "full": 1e-3}[method],
            "lr_scheduler_type": "constant",
            "seed": 0,
            "plot_loss": True,
            "disable_tqdm": True,
        }
        cfg.update(extra)
        return cfg

    return make
