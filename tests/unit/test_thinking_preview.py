"""`tuneforge preview` shows thinking: think blocks marked trained / masked (colored in a terminal) and one line of
the thinking settings in effect, with the empty think blocks the template inserted."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

from tuneforge.config import load_config
from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.preview import render_label_mask, thinking_line
from tuneforge.data.sft import encode_sft_example
from tuneforge.data.template import get_template
from tuneforge.train.preview import preview
from tuneforge.webui.render import preview_html

FIXTURES = Path(__file__).parent.parent / "fixtures"
MIXED = Conversation(
    [Message("user", "Name a colour."), Message("assistant", "Blue."), Message("user", "Another one?")]
    + [Message("assistant", "<think>\nPick a warm one.\n</think>\n\nRed.")]
)
Q1 = "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n"
Q2 = "<|im_start|>user\nAnother one?<|im_end|>\n<|im_start|>assistant\n"


def shown(template, tokenizer, conv=MIXED, color=False) -> tuple[str, str | None]:
    ex = encode_sft_example(conv, template, tokenizer, cutoff_len=4096)
    ids, labels = ex["input_ids"], ex["labels"]
    text = render_label_mask(ids, labels, tokenizer, color=color, thought_words=template.thought_words)
    return text, thinking_line(ids, labels, tokenizer, template, conv)


def test_reasoning_template_thinking_on(tiny_tokenizer):
    text, line = shown(get_template("qwen3", tiny_tokenizer, enable_thinking=True), tiny_tokenizer)
    assert text.rsplit("\n", 1)[0] == (
        Q1
        + "⟦<think>\n\n</think>\n\nBlue.<|im_end|>\n⟧"
        + Q2
        + "⟦<think>\nPick a warm one.\n</think>\n\nRed.<|im_end|>\n⟧"
    )
    assert line == (
        "thinking: enable_thinking true · preserve_thinking false · template qwen3 (reasoning) · "
        "think blocks: 1 trained · empty think block inserted: 1 (trained, in the reply)"
    )


def test_reasoning_template_thinking_off_and_mixed(tiny_tokenizer):
    _, line = shown(get_template("qwen3", tiny_tokenizer, enable_thinking=False), tiny_tokenizer)
    assert line.endswith("think blocks: none · empty think block inserted: 2 (masked, in the prompt)")
    assert "enable_thinking false" in line
    _, line = shown(get_template("qwen3", tiny_tokenizer, enable_thinking=None, preserve_thinking=True), tiny_tokenizer)
    assert line == (
        "thinking: enable_thinking null · preserve_thinking true · template qwen3 (reasoning) · "
        "think blocks: 1 trained · empty think block inserted: 1 (masked, in the prompt)"
    )


def test_plain_template_and_no_thinking(tiny_tokenizer):
    _, line = shown(get_template("qwen3_nothink", tiny_tokenizer, enable_thinking=False), tiny_tokenizer)
    assert line == (
        "thinking: template qwen3_nothink (plain): enable_thinking / preserve_thinking have no effect · "
        "think blocks: 1 trained · empty think block inserted: none"
    )
    plain = Conversation([Message("user", "Hi"), Message("assistant", "Hello!")])
    assert shown(get_template("chatml", tiny_tokenizer), tiny_tokenizer, plain)[1] is None


def test_tokenizer_template_line(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = (FIXTURES / "chat_templates" / "Qwen-Qwen3-8B.jinja").read_text(encoding="utf-8")
    _, line = shown(get_template("tokenizer", tok, enable_thinking=False), tok)
    assert line == (
        "thinking: enable_thinking false · preserve_thinking false · template tokenizer (reasoning): its Jinja "
        "places the thinking · think blocks: none · empty think block inserted: 1 (masked, in the prompt)"
    )


def test_think_blocks_are_colored(tiny_tokenizer):
    text, _ = shown(get_template("qwen3", tiny_tokenizer, enable_thinking=None), tiny_tokenizer, color=True)
    assert "\x1b[2;35m<think>\n\n</think>\x1b[0m" in text  # the inserted empty block, masked
    assert "\x1b[35m<think>\nPick a warm one.\n</think>\x1b[0m\x1b[32m\n\nRed.<|im_end|>\n\x1b[0m" in text
    assert text.startswith("\x1b[2m<|im_start|>user\n")


def test_preview_command_shows_the_thinking_line(tiny_model_dir, tmp_path):
    data = shutil.copytree(FIXTURES / "thinking", tmp_path / "thinking")
    overrides = {"model_name_or_path": str(tiny_model_dir), "dataset": "think_openai", "dataset_dir": str(data)}
    out = preview(load_config(None, {**overrides, "template": "qwen3"}), count=1, color=False)
    header, body, summary, line = out.split("\n", 1)[0], *out.split("\n", 1)[1].rsplit("\n", 2)
    assert header.startswith("── think_openai · ") and header.endswith("openai_reasoning.jsonl:1 · template qwen3 ──")
    assert body.endswith("⟦<think>\nFive plus five.\n</think>\n\n10.<|im_end|>\n⟧")
    assert summary.startswith("tokens: ")
    assert line.startswith("thinking: enable_thinking true · preserve_thinking false · template qwen3 (reasoning)")
    assert "think blocks: 2 trained" in line


def test_web_ui_shows_the_thinking_line_as_a_note():
    out = preview_html("── d · f:1 · template qwen3 ──\n⟦<think>\nR\n</think>⟧\ntokens: 5, trained: 3\nthinking: x · y")
    assert "<i>thinking: x · y</i>" in out
