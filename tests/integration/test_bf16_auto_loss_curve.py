"""On a CPU with native bf16, `compute_type: auto` trains in bf16 autocast (LoRA; full with fp32 master weights),
and its loss curve stays within tolerance of the fp32 run's (same seed and data: only the precision differs). This
machine's CPU flags are replaced by AMX's; where the CPU has none, the bf16 matmuls are emulated (slower, same
rounding), so the curve is the same."""

from __future__ import annotations

import json

import pytest

from tuneforge.config import load_config
from tuneforge.train import arguments
from tuneforge.train.run import run_training
from tuneforge.utils import devices


def curve(out) -> list[float]:
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r.get("loss") is not None]


@pytest.mark.parametrize("method", ["lora", "full"])
def test_auto_trains_in_bf16_on_an_amx_cpu_close_to_fp32(train_overrides, tmp_path, monkeypatch, method):
    monkeypatch.delenv(devices.CPU_BF16_ENV, raising=False)  # the suite's fp32 pin (tests/conftest.py)
    monkeypatch.setattr(devices, "has_cuda", lambda: False)
    monkeypatch.setattr(devices, "cpu_bf16_features", lambda: ("AMX-BF16",))
    said = []
    monkeypatch.setattr(arguments.logger, "info", lambda msg, *a: said.append(msg % a))
    common = {"max_steps": 8, "cutoff_len": 32}
    auto = run_training(load_config(None, train_overrides(method, output_dir=str(tmp_path / "auto"), **common)))
    assert said == ["compute_type auto: bf16 (this CPU has AMX-BF16)"]
    fp32 = run_training(
        load_config(None, train_overrides(method, output_dir=str(tmp_path / "fp32"), compute_type="fp32", **common))
    )
    assert len(curve(auto)) == len(curve(fp32)) == 8
    assert curve(auto) != curve(fp32)  # bf16 did run: its rounding shows in the losses
    assert curve(auto) == pytest.approx(curve(fp32), rel=0.01)  # the largest gap seen here: 0.26%
    assert curve(auto)[-1] < curve(auto)[0]
