"""benchmarks/grpo_vs_trl.py --quick: one GRPO run through `tuneforge train` (stage grpo) and one through plain TRL
GRPOTrainer + peft, each in its own process, reported as JSON lines. No timing thresholds (behaviour only); what it
does check is that both sides did the same work: with the same seed, model, prompts and settings they sample the
same completions, so the logged mean reward and completion length are equal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "grpo_vs_trl.py"
POSITIVE = ("steps_per_s", "steps_per_cpu_s", "completions_per_s", "completion_tokens_per_s", "first_step_s")
POSITIVE += ("train_s", "peak_rss_mib", "rss_at_train_begin_mib", "mean_completion_length", "threads")


@pytest.mark.slow
def test_quick_grpo_benchmark_runs_both_sides_on_the_same_work(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--work", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]  # stdout holds JSON only
    runs = {r["row"]: r for r in lines if not r.get("summary")}
    assert set(runs) == {"grpo", "grpo_baseline"}
    for run in runs.values():
        assert run["steps"] == 5 and run["beta"] == 0.0
        for field in POSITIVE:
            assert run[field] > 0, (run["row"], field)
        assert len(run["cpu_pressure"]) == 2 and isinstance(run["contended"], bool)
    ours, trl = runs["grpo"], runs["grpo_baseline"]
    assert ours["mean_reward"] == trl["mean_reward"] and ours["mean_reward"] < 0  # the length reward's penalty
    assert ours["mean_completion_length"] == trl["mean_completion_length"]
    summary = {s["row"]: s for s in lines if s.get("summary")}
    assert summary["grpo"]["steps_per_cpu_s_vs_baseline"] > 0 and summary["grpo"]["peak_rss_vs_baseline"] > 0

    table = subprocess.run(
        [sys.executable, str(SCRIPT), "--table", "/dev/stdin"], input=proc.stdout, capture_output=True, text=True
    )
    assert table.returncode == 0, table.stderr[-2000:]
    rows = table.stdout.splitlines()
    assert rows[0].startswith("| model | row | beta | steps/s |") and len(rows) == 4
    assert rows[2].startswith("| tiny | grpo | 0.0 |") and "| 1.00× |" in rows[3]
