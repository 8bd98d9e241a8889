"""`make demo`: build a tiny model offline, LoRA-fine-tune it on the identity dataset, then ask who it is."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
os.chdir(ROOT)

from tuneforge.cli import main  # noqa: E402

CONFIG = "examples/demo/identity_lora_sft.yaml"
MODEL = "saves/demo/tiny-qwen2"
ADAPTER = "saves/demo/identity-lora"


def step(title: str, argv: list[str]) -> None:
    print(f"\n==> {title}\n    tuneforge {' '.join(argv)}", flush=True)
    code = main(argv)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    start = time.monotonic()
    step(
        "Build a tiny Qwen2 model offline",
        [
            "create-tiny-model",
            MODEL,
            "--layers",
            "4",
            "--hidden",
            "256",
            "--heads",
            "8",
            "--kv-heads",
            "4",
            "--intermediate",
            "512",
        ],
    )
    step("LoRA fine-tune it on the identity dataset", ["train", CONFIG])
    step(
        "Ask it who it is",
        [
            "chat",
            CONFIG,
            f"adapter_name_or_path={ADAPTER}",
            "do_sample=false",
            "max_new_tokens=64",
            "--query",
            "Who are you?",
            "--query",
            "你是谁？",
        ],
    )
    print(f"\nThe LoRA adapter is in {ROOT / ADAPTER} (peft format; loss curve: training_loss.png there).")
    print(f"Demo finished in {time.monotonic() - start:.0f} s.")
