"""benchmarks/vs_llamafactory.py's pure parts, without LLaMA-Factory's venv: the one config a row writes is valid
for both tools (every key an LF 0.9.5 field or a TrainingArguments field, and our loader reads it as the row
means it), the summary's medians and TuneForge / LF ratios with issue 19's targets, and a failed run's error line."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import vs_llamafactory as vs  # noqa: E402

from tuneforge.config import load_config  # noqa: E402

OPTS = SimpleNamespace(cutoff_len=256, batch_size=2, grad_accum=2, lora_rank=4, extra={})


def lf_keys() -> set[str]:
    """LF 0.9.5's own argument fields (tests/unit/lf_0_9_5_fields.txt) and the Trainer's, which LF passes on."""
    from transformers import TrainingArguments

    text = (Path(__file__).parent / "lf_0_9_5_fields.txt").read_text(encoding="utf-8")
    own = {line.split()[1] for line in text.splitlines() if line and not line.startswith("#")}
    return own | {f.name for f in dataclasses.fields(TrainingArguments)}


@pytest.mark.parametrize("row", vs.ROWS)
def test_row_config_is_valid_for_both_tools(row, tmp_path):
    cfg = vs.lf_config(row, tmp_path / "model", tmp_path / "data", tmp_path / "out", OPTS)
    assert set(cfg) <= lf_keys(), set(cfg) - lf_keys()
    path = tmp_path / f"{row}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    ours = load_config(str(path))
    base = vs.VARIANTS.get(row, (row, {}))[0]
    assert ours.finetuning.stage == ("dpo" if base == "dpo" else "sft")
    assert ours.finetuning.finetuning_type == {"qlora": "lora", "dpo": "lora"}.get(base, base)
    assert ours.model.disable_gradient_checkpointing == row.endswith("_no_gc")
    assert ours.data.template == "qwen" and ours.data.cutoff_len == 256
    training = ours.training  # the Trainer's keys, as written
    checkpointed = row.endswith("_gc") and not row.endswith("_no_gc")  # on in both: ours reads transformers' key
    assert training.get("gradient_checkpointing") is (True if checkpointed else None)
    assert training["gradient_accumulation_steps"] == 2 and training["logging_steps"] == 1
    assert training["report_to"] in ("none", []) and training["save_strategy"] == "no"
    assert (ours.model.quantization_bit == 4) == (base == "qlora")
    if ours.finetuning.finetuning_type == "lora":
        assert ours.finetuning.lora_rank == 4 and ours.finetuning.lora_alpha == 8


def run(tool: str, tps: float, rss: float, first: float, *, contended: bool = False, row: str = "lora") -> dict:
    return {
        "model": "tiny",
        "row": row,
        "tool": tool,
        "tokens_per_s": tps,
        "tokens_per_cpu_s": tps,
        "samples_per_s": 1.0,
        "first_step_s": first,
        "peak_rss_mib": rss,
        "predicted_mib": 100.0,
        "mfu": 0.1,
        "matmul_peak_gflops": 50.0,
        "contended": contended,
    }


def test_summary_takes_uncontended_medians_and_ratios():
    runs = [
        run("llamafactory", 100, 1000, 10),
        run("tuneforge", 300, 700, 4),
        run("llamafactory", 120, 1000, 12),
        run("tuneforge", 260, 750, 6),
        run("tuneforge", 1, 1, 1, contended=True),  # left out of the medians
        run("llamafactory", 110, 1000, 11),
        run("tuneforge", 280, 800, 5),
    ]
    lines = vs.summary_lines(runs, 50.0)
    per_tool = {s["tool"]: s for s in lines if s["tool"] in vs.TOOLS}
    assert per_tool["tuneforge"]["tokens_per_s"] == 280 and per_tool["tuneforge"]["used"] == 3
    assert per_tool["llamafactory"]["first_step_s"] == 11
    (ratio,) = [s for s in lines if s["tool"] == "tuneforge/llamafactory"]
    assert ratio["tokens_per_s_vs_lf"] == round(280 / 110, 2)
    assert ratio["peak_rss_vs_lf"] == 0.75 and ratio["first_step_vs_lf"] == round(5 / 11, 2)
    assert ratio["targets"] == {"tokens_per_s >= 2.5x": True, "peak_rss <= 0.8x": True, "first_step <= 0.5x": True}


def test_a_failed_row_is_reported_with_its_error():
    refusal = {"model": "tiny", "row": "qlora", "tool": "llamafactory", "error": "exit 1: ValueError: no CPU"}
    lines = vs.summary_lines([refusal, run("tuneforge", 300, 700, 4, row="qlora")], 50.0)
    (ratio,) = [s for s in lines if s["tool"] == "tuneforge/llamafactory"]
    assert ratio["failed"] == {"llamafactory": "exit 1: ValueError: no CPU"}


def test_last_error_line_is_the_reason():
    output = "INFO loading\nTraceback (most recent call last):\n  File x\nValueError: Quantization needs CUDA.\n"
    assert vs.last_error(output) == "ValueError: Quantization needs CUDA."
    assert vs.last_error("just a line\n") == "just a line"


def test_the_baseline_runs_another_checkouts_code_cold_and_is_summarised_beside_ours(tmp_path):
    env = vs.run_env(tmp_path / "marks.json", vs.BASE, str(tmp_path / "base"))
    assert env["PYTHONPATH"].split(os.pathsep) == [str(BENCHMARKS / "step_timer"), str(tmp_path / "base" / "src")]
    assert env["TUNEFORGE_WARM"] == "0"
    assert vs.commands(SimpleNamespace(lf_venv="lf"))[vs.BASE][1:] == ["-m", "tuneforge", "train"]
    assert vs.run_env(tmp_path / "marks.json", "tuneforge")["PYTHONPATH"] == str(BENCHMARKS / "step_timer")

    runs = [run("llamafactory", 100, 1000, 10), run("tuneforge", 300, 700, 4), run(vs.BASE, 290, 720, 6)]
    (base,) = [s for s in vs.summary_lines(runs, 50.0) if s["tool"] == f"{vs.BASE}/llamafactory"]
    assert base["first_step_vs_lf"] == 0.6 and base["targets"]["first_step <= 0.5x"] is False
