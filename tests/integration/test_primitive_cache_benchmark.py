"""benchmarks/primitive_cache.py: one process per cache setting, each reporting the capacities it ran with, its RSS
growth per block of new matmul shapes and the time per matmul (no thresholds: behaviour only). On a CPU without
native bf16 the caches are not used, and the script says so after the first setting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from processes import cli_env

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "primitive_cache.py"


def test_one_line_per_setting_with_what_the_process_read():
    args = ["--shapes", "6", "--every", "3", "--in-features", "32", "--out-features", "48"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--settings", "1024/1024", "64/32"],
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    first = lines[0]
    settings = [(1024, 1024), (64, 32)] if first["onednn_bf16"] else [(1024, 1024)]
    results = [line for line in lines if "rss_growth_mib" in line]
    assert [(r["onednn_capacity"], r["ideep_capacity"]) for r in results] == settings
    for result, (onednn, ideep) in zip(results, settings, strict=True):
        assert result["read"] == {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": str(onednn), "LRU_CACHE_CAPACITY": str(ideep)}
        assert len(result["rss_growth_mib"]) == 2 and result["ms_per_matmul"] > 0
        assert (result["shapes"], result["in"], result["out"]) == (6, 32, 48)
    if not first["onednn_bf16"]:
        assert lines[-1] == {"note": "no native bf16 on this CPU: torch does not use oneDNN for these matmuls"}
