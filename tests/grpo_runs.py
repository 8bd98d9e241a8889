"""A GRPO run on the tiny model that learns within seconds (tests/integration/test_grpo_stage.py says why)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = 40  # = 20 generation rounds with num_iterations 2


def grpo_cfg(model_dir: Path, out: Path, **extra) -> dict:
    cfg = {
        "model_name_or_path": str(model_dir),
        "stage": "grpo",
        "finetuning_type": "lora",
        "lora_rank": 8,
        "lora_alpha": 16,
        "dataset": "math_demo",
        "dataset_dir": str(ROOT / "data"),
        "template": "qwen",
        "cutoff_len": 128,
        "num_generations": 4,
        "per_device_train_batch_size": 8,  # 2 prompts x 4 completions per step
        "max_completion_length": 8,
        "temperature": 0.3,
        "learning_rate": 1e-2,
        "lr_scheduler_type": "constant",
        "num_iterations": 2,
        "reward_funcs": "length",
        "length_reward_unit": "chars",
        "length_reward_target": 12,
        "max_steps": STEPS,
        "logging_steps": 1,
        "save_steps": 1000,
        "seed": 0,
        "report_to": "none",
        "disable_tqdm": True,
        "output_dir": str(out),
    }
    cfg.update(extra)
    return cfg
