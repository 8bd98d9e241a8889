"""The shipped alpaca demo datasets are what scripts/make_demo_data.py makes from its tables (scripts/demo_data/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_alpaca_demo_files_match_their_tables(tmp_path):
    script = ROOT / "scripts" / "make_demo_data.py"
    check = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert check.returncode == 0, check.stdout + check.stderr
    fresh = subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], capture_output=True, cwd=ROOT)
    assert fresh.returncode == 0
    for name in ("alpaca_en_demo.json", "alpaca_zh_demo.json"):
        assert (tmp_path / name).read_bytes() == (ROOT / "data" / name).read_bytes()
