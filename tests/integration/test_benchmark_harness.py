"""benchmarks/harness.py --quick: one LoRA SFT run through TuneForge and one through plain Trainer + peft, each in
its own process, reported as JSON lines with positive measurements (no timing thresholds: behaviour only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "benchmarks" / "harness.py"
RUN_FIELDS = (
    "tokens_per_s",
    "tokens_per_cpu_s",
    "samples_per_s",
    "first_step_s",
    "train_s",
    "steps",
    "real_tokens",
    "peak_rss_mib",
    "predicted_mib",
    "mfu",
    "threads",
)


@pytest.mark.slow
def test_quick_harness_reports_both_paths(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(HARNESS), "--quick", "--work", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]  # stdout holds JSON only
    assert lines[0]["matmul_peak_gflops"] > 0
    runs = [r for r in lines if "row" in r and not r.get("summary")]
    assert {r["row"] for r in runs} == {"lora", "baseline"}
    for run in runs:
        for field in RUN_FIELDS:
            assert run[field] > 0, (run["row"], field)
        assert 0 < run["mfu"] < 1
        assert run["real_tokens"] == runs[0]["real_tokens"]  # the same data on both paths
        assert len(run["cpu_pressure"]) == 2 and isinstance(run["contended"], bool)
    summary = {s["row"]: s for s in lines if s.get("summary")}
    assert summary["lora"]["tokens_per_s_vs_baseline"] > 0 and summary["lora"]["peak_rss_vs_baseline"] > 0
