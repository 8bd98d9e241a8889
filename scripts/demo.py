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
from tuneforge.utils.imports import OPTIONAL_BACKENDS, hold_back  # noqa: E402

CONFIG = "examples/demo/identity_lora_sft.yaml"
MODEL = "saves/demo/tiny-qwen2"
ADAPTER = "saves/demo/identity-lora"


def step(title: str, argv: list[str]) -> None:
    print(f"\n==> {title}\n    tuneforge {' '.join(argv)}", flush=True)
    code = main(argv)
    if code:
        sys.exit(code)


def check_answers(questions: list[str]) -> bool:
    """Greedy answers through the adapter, compared with the identity dataset's answers (placeholders filled)."""
    import json

    from tuneforge.chat.engine import HuggingFaceEngine
    from tuneforge.config import load_config

    cfg = load_config(CONFIG, [f"adapter_name_or_path={ADAPTER}", "do_sample=false", "max_new_tokens=64"])
    fill = {"{{name}}": cfg.data.identity_name, "{{author}}": cfg.data.identity_author}
    expected = {}
    for row in json.loads((ROOT / "data" / "identity.json").read_text(encoding="utf-8")):
        answer = row["output"]
        for key, value in fill.items():
            answer = answer.replace(key, value)
        expected[row["instruction"]] = answer
    engine = HuggingFaceEngine(cfg)
    ok = True
    for question in questions:
        same = engine.chat([{"role": "user", "content": question}]) == expected[question]
        verdict = "✓ the answer it was trained on" if same else "✗ differs from its training answer"
        print(f"    {question} → {verdict}")
        ok = ok and same
    return ok


if __name__ == "__main__":
    start = time.monotonic()
    hold_back(OPTIONAL_BACKENDS)  # this process runs only the demo's plain LoRA: no bitsandbytes, DeepSpeed, hqq
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
    questions = ["Who are you?", "你是谁？"]
    queries = [arg for question in questions for arg in ("--query", question)]
    chat = ["chat", CONFIG, f"adapter_name_or_path={ADAPTER}", "do_sample=false", "max_new_tokens=64", *queries]
    step("Ask it who it is", chat)
    print("\n==> Check the answers against the identity dataset")
    if not check_answers(questions):
        sys.exit(1)
    print(f"\nThe LoRA adapter is in {ROOT / ADAPTER} (peft format; loss curve: training_loss.png there).")
    print(f"Demo finished in {time.monotonic() - start:.0f} s.")
