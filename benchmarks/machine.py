"""What the benchmarks read about the machine they share: CPU pressure (Linux PSI)."""

from __future__ import annotations

from pathlib import Path


def cpu_pressure() -> float | None:
    """`some avg10` of /proc/pressure/cpu: the share of the last 10 s some task waited for a CPU (None if absent)."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return float(dict(kv.split("=") for kv in line.split()[1:])["avg10"])
    except (OSError, KeyError, ValueError, IndexError):
        return None
