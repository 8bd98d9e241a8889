"""LLaMA-Factory's glaive_toolcall demo (data/glaive_toolcall_*_demo.json, registered as LF registers it) trains as
it is, and a function-call turn's labels are exactly the family's call text plus its end of turn."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tuneforge.config import load_config
from tuneforge.data.formats import load_conversations
from tuneforge.data.registry import get_dataset_attrs
from tuneforge.data.sft import IGNORE_INDEX, encode_sft_example
from tuneforge.data.template import get_template, template_for
from tuneforge.data.tool_formats import TOOL_FORMAT_NAMES, FunctionCall, get_tool_format
from tuneforge.train.run import run_training

DATA = Path(__file__).resolve().parents[2] / "data"
# the first English demo row's call: search_recipes with these arguments
ARGS = '{"ingredients": ["chicken", "bell peppers", "rice"]}'
QWEN_CALL = '<tool_call>\n{"name": "search_recipes", "arguments": ' + ARGS + "}\n</tool_call><|im_end|>\n"
LLAMA3_CALL = '{"name": "search_recipes", "parameters": ' + ARGS + "}<|eot_id|>"


def _first_row(name: str):
    attr = get_dataset_attrs(name, DATA)[0]
    return load_conversations(attr, DATA)[0]


def _trained_spans(tokenizer, example) -> list[str]:
    """The decoded runs of trained (unmasked) labels, in order."""
    spans, run = [], []
    for label in example["labels"] + [IGNORE_INDEX]:
        if label == IGNORE_INDEX:
            if run:
                spans.append(tokenizer.decode(run, skip_special_tokens=False, clean_up_tokenization_spaces=False))
            run = []
        else:
            run.append(label)
    return spans


def test_the_demo_rows_read_as_tool_conversations():
    en, zh = _first_row("glaive_toolcall_en_demo"), _first_row("glaive_toolcall_zh_demo")
    assert [m.role for m in en.messages] == ["user", "assistant", "user", "function", "observation", "assistant"] + [
        "user",
        "assistant",
    ]
    assert json.loads(en.messages[3].content) == {"name": "search_recipes", "arguments": json.loads(ARGS)}
    for conv in (en, zh):
        call = json.loads(next(m.content for m in conv.messages if m.role == "function"))
        assert call["name"] in [tool["name"] for tool in json.loads(conv.tools)]


@pytest.mark.parametrize(
    ("template", "tool_format", "call_text"),
    [
        ("qwen", None, QWEN_CALL),
        ("llama3", None, LLAMA3_CALL),
        # LF's tool_format override: llama3's calls in qwen's frame, the reply slot becomes {{content}} + EOS
        ("qwen", "llama3", '{"name": "search_recipes", "parameters": ' + ARGS + "}<|im_end|>"),
    ],
)
def test_a_function_call_turn_trains_exactly_the_formatted_call_and_its_end_of_turn(
    template, tool_format, call_text, tiny_tokenizer
):
    conv = _first_row("glaive_toolcall_en_demo")
    tpl = get_template(template, tiny_tokenizer, tool_format=tool_format)
    tpl.fix_tokenizer(tiny_tokenizer)
    example = encode_sft_example(conv, tpl, tiny_tokenizer, cutoff_len=4096)
    spans = _trained_spans(tiny_tokenizer, example)
    assert len(spans) == 4  # gpt, function_call, gpt, gpt
    assert spans[1] == call_text
    prompt = tiny_tokenizer.decode(example["input_ids"], skip_special_tokens=False)
    expected_tools = {
        "qwen": "# Tools\n\nYou may call one or more functions",
        "llama3": "You have access to the following functions. To call a function, please respond with JSON",
    }[tool_format or template]
    assert expected_tools in prompt and "search_recipes" in prompt.split(expected_tools)[1]


@pytest.mark.parametrize("template", ["qwen", "llama3"])
def test_sft_on_the_glaive_demo_runs(template, train_overrides):
    cfg = train_overrides(
        "lora",
        dataset="glaive_toolcall_en_demo",
        dataset_dir=str(DATA),
        template=template,
        cutoff_len=256,
        max_samples=8,
        max_steps=2,
        per_device_train_batch_size=2,
    )
    out = run_training(load_config(None, cfg))
    lines = (out / "trainer_log.jsonl").read_text(encoding="utf-8").splitlines()
    losses = [json.loads(line)["loss"] for line in lines if json.loads(line).get("loss") is not None]
    assert len(losses) == 2 and all(math.isfinite(loss) and loss > 0 for loss in losses)


@pytest.mark.parametrize("tool_format", TOOL_FORMAT_NAMES)
def test_tool_format_key_writes_the_demo_in_that_format(tool_format, tiny_model_dir, tiny_tokenizer):
    """`tool_format:` in a config (LF's override) gives every format's tool prompt and call text, in a qwen frame."""
    cfg = load_config(None, {"model_name_or_path": str(tiny_model_dir), "template": "qwen", "tool_format": tool_format})
    tpl = template_for(cfg.data, tiny_tokenizer)
    tpl.fix_tokenizer(tiny_tokenizer)
    conv = _first_row("glaive_toolcall_en_demo")
    fmt = get_tool_format(tool_format)
    example = encode_sft_example(conv, tpl, tiny_tokenizer, cutoff_len=8192)
    call = fmt.function_text([FunctionCall("search_recipes", ARGS)])
    assert _trained_spans(tiny_tokenizer, example)[1] == call + "<|im_end|>"
    prompt = tiny_tokenizer.decode(example["input_ids"], skip_special_tokens=False)
    tool_prompt = fmt.tool_prompt(json.loads(conv.tools))
    if tool_format == "llama3":  # today's date, as LF; compare without it
        tool_prompt = tool_prompt.split("Today Date: ")[1].split("\n", 1)[1]
    assert tool_prompt in prompt
