"""A multi-turn reasoning dataset (sharegpt with <think> in the content, OpenAI with reasoning_content / reasoning)
trains with `template: qwen3`, `qwen3_nothink` and `tokenizer` (the tiny model carrying the official Qwen3
chat_template), and the label masks of the encoded dataset are docs/thinking.md's table, written out by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tuneforge.config import load_config
from tuneforge.data.loader import get_sft_datasets
from tuneforge.data.sft import IGNORE_INDEX
from tuneforge.train.common import load_tokenizer_and_template
from tuneforge.train.run import run_training

FIXTURES = Path(__file__).parent.parent / "fixtures"
P1 = "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
P2 = "<|im_start|>user\nAnd 5+5?<|im_end|>\n<|im_start|>assistant\n"
Q1 = "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n"
Q2 = "<|im_start|>user\nAnother one?<|im_end|>\n<|im_start|>assistant\n"
EMPTY = "<think>\n\n</think>\n\n"
THINK_1, THINK_2 = "<think>\nAdd two and three.\n</think>\n\n", "<think>\nFive plus five.\n</think>\n\n"
THINK_RED = "<think>\nPick a warm one.\n</think>\n\n"
A1, A2, B1, B2 = "2+3=5.<|im_end|>\n", "10.<|im_end|>\n", "Blue.<|im_end|>\n", "Red.<|im_end|>\n"

# (template, enable_thinking) → for row 1 (both replies think) and row 2 (only the last one does):
# (masked runs, trained runs). Row 1 and 2 of each dataset carry the same conversations.
TABLE = {
    ("qwen3", True): [([P1, P2], [THINK_1 + A1, THINK_2 + A2]), ([Q1, Q2], [EMPTY + B1, THINK_RED + B2])],
    ("qwen3", False): [([P1 + EMPTY, P2 + EMPTY], [A1, A2]), ([Q1 + EMPTY, Q2 + EMPTY], [B1, B2])],
    ("qwen3", None): [([P1, P2], [THINK_1 + A1, THINK_2 + A2]), ([Q1 + EMPTY, Q2], [B1, THINK_RED + B2])],
    ("qwen3_nothink", True): [([P1, P2], [THINK_1 + A1, THINK_2 + A2]), ([Q1, Q2], [B1, THINK_RED + B2])],
    ("qwen3_nothink", False): [([P1, P2], [THINK_1 + A1, THINK_2 + A2]), ([Q1, Q2], [B1, THINK_RED + B2])],
    # the official Qwen3 template drops the thinking of replies before the last user query
    ("tokenizer", True): [([P1, P2], [A1, THINK_2 + A2]), ([Q1, Q2], [B1, THINK_RED + B2])],
    ("tokenizer", False): [([P1, P2 + EMPTY], [A1, A2]), ([Q1, Q2 + EMPTY], [B1, B2])],
    ("tokenizer", None): [([P1, P2], [A1, THINK_2 + A2]), ([Q1, Q2], [B1, THINK_RED + B2])],
}


@pytest.fixture
def qwen3_chat_model(tiny_model_dir, tmp_path) -> Path:
    """The tiny model with the official Qwen3 chat_template."""
    folder = tmp_path / "tiny-qwen3-chat"
    shutil.copytree(tiny_model_dir, folder)
    template = (FIXTURES / "chat_templates" / "Qwen-Qwen3-8B.jinja").read_text(encoding="utf-8")
    (folder / "chat_template.jinja").write_text(template, encoding="utf-8")
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.fixture
def thinking_data(tmp_path) -> Path:
    return Path(shutil.copytree(FIXTURES / "thinking", tmp_path / "thinking"))


def runs(input_ids: list[int], labels: list[int], tokenizer) -> tuple[list[str], list[str]]:
    """The decoded masked runs and trained runs of one encoded sample."""
    out: list[tuple[bool, list[int]]] = []
    for i, label in zip(input_ids, labels, strict=True):
        trained = label != IGNORE_INDEX
        assert not trained or label == i
        if out and out[-1][0] == trained:
            out[-1][1].append(i)
        else:
            out.append((trained, [i]))
    decoded = [(t, tokenizer.decode(ids)) for t, ids in out]
    return [s for t, s in decoded if not t], [s for t, s in decoded if t]


def config(train_overrides, model: Path, data: Path, template: str, enable_thinking, **extra):
    return load_config(
        None,
        train_overrides(
            "lora",
            model_name_or_path=str(model),
            dataset="think_sharegpt,think_openai",
            dataset_dir=str(data),
            template=template,
            enable_thinking=enable_thinking,
            cutoff_len=256,
            per_device_train_batch_size=2,
            **extra,
        ),
    )


def encoded_table(cfg) -> list[tuple[list[str], list[str]]]:
    tokenizer, template = load_tokenizer_and_template(cfg)
    train, _ = get_sft_datasets(cfg.data, template, tokenizer)
    return sorted(runs(row["input_ids"], row["labels"], tokenizer) for row in train)


@pytest.mark.parametrize(("template", "enable_thinking"), list(TABLE), ids=[f"{t}-{e}" for t, e in TABLE])
def test_label_masks_match_the_documented_table(
    template, enable_thinking, train_overrides, tiny_model_dir, qwen3_chat_model, thinking_data
):
    model = qwen3_chat_model if template == "tokenizer" else tiny_model_dir
    cfg = config(train_overrides, model, thinking_data, template, enable_thinking)
    rows = TABLE[(template, enable_thinking)]
    assert encoded_table(cfg) == sorted(rows * 2)  # sharegpt and OpenAI rows encode the same


@pytest.mark.parametrize(
    ("template", "enable_thinking"), [("qwen3", None), ("qwen3_nothink", True), ("tokenizer", False)]
)
def test_trains_a_few_steps(
    template, enable_thinking, train_overrides, tiny_model_dir, qwen3_chat_model, thinking_data
):
    model = qwen3_chat_model if template == "tokenizer" else tiny_model_dir
    out = run_training(config(train_overrides, model, thinking_data, template, enable_thinking, max_steps=2))
    lines = (out / "trainer_log.jsonl").read_text(encoding="utf-8").splitlines()
    losses = [json.loads(line)["loss"] for line in lines if json.loads(line).get("loss") is not None]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
