"""qwen3 (reasoning) and qwen3_nothink (plain) train exactly what LLaMA-Factory 0.9.5 trains on reasoning data, for
every enable_thinking (true / false / null) × preserve_thinking × mask_history, on rows with and without think
blocks. The expected runs come from LF's own code (scripts/lf_thinking_table.py → tests/fixtures/thinking/
lf_qwen3.jsonl); docs/thinking.md's table is the same facts in words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.sft import IGNORE_INDEX, encode_sft_example
from tuneforge.data.template import get_template

FIXTURES = Path(__file__).parent.parent / "fixtures" / "thinking"
CASES = [json.loads(line) for line in (FIXTURES / "lf_qwen3.jsonl").read_text(encoding="utf-8").splitlines()]
ROLES = {"human": "user", "gpt": "assistant"}


def fixture_rows() -> list[Conversation]:
    rows = []
    for name in ("sharegpt_think.jsonl", "plain.jsonl"):
        for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
            rows.append(
                Conversation([Message(ROLES[m["from"]], m["value"]) for m in json.loads(line)["conversations"]])
            )
    return rows


def merged(parts: list[tuple[bool, str]]) -> list[tuple[bool, str]]:
    out: list[tuple[bool, str]] = []
    for trained, text in parts:
        if out and out[-1][0] == trained:
            out[-1] = (trained, out[-1][1] + text)
        elif text:
            out.append((trained, text))
    return out


def ours(example: dict, tokenizer) -> list[tuple[bool, str]]:
    parts = []
    for i, label in zip(example["input_ids"], example["labels"], strict=True):
        assert label in (IGNORE_INDEX, i)
        parts.append((label != IGNORE_INDEX, tokenizer.decode([i])))
    return merged(parts)


def case_id(case: dict) -> str:
    keys = ("template", "enable_thinking", "preserve_thinking", "mask_history", "row")
    return "-".join(f"{case[k]}" for k in keys)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_label_mask_equals_llamafactory(case, tiny_tokenizer):
    template = get_template(
        case["template"],
        tiny_tokenizer,
        enable_thinking=case["enable_thinking"],
        preserve_thinking=case["preserve_thinking"],
    )
    conv = fixture_rows()[case["row"]]
    example = encode_sft_example(conv, template, tiny_tokenizer, cutoff_len=4096, mask_history=case["mask_history"])
    want = merged([p for t in case["turns"] for p in ((False, t["prompt"]), (t["trained"], t["response"]))])
    assert ours(example, tiny_tokenizer) == want
