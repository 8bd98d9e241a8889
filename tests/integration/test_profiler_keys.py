"""The torch profiler (enable_torch_profiler + its schedule keys) writes Chrome traces of exactly the active steps;
profile_modules times the matching modules' forward and backward."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from tuneforge.cli import main
from tuneforge.config import load_config
from tuneforge.config.tracking_args import TrackingArguments
from tuneforge.errors import UserError
from tuneforge.train.profiler import ModuleTimerCallback, TorchProfilerCallback


def overrides(cfg: dict) -> list[str]:
    return [f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in cfg.items()]


def trace_events(folder) -> list[list[dict]]:
    """The events of each trace file in folder, oldest first."""
    files = sorted(folder.glob("*.pt.trace.json"), key=lambda p: p.stat().st_mtime_ns)
    return [json.loads(f.read_text())["traceEvents"] for f in files]


def step_numbers(events) -> list[int]:
    return sorted({int(e["name"].split("#")[1]) for e in events if e.get("name", "").startswith("ProfilerStep#")})


def test_profiler_traces_the_active_steps_of_a_training_run(train_overrides, tmp_path):
    folder = tmp_path / "traces"
    cfg = train_overrides(
        "lora",
        max_steps=6,
        enable_torch_profiler=True,
        profiler_output_dir=str(folder),
        profiler_wait_steps=1,
        profiler_warmup_steps=1,
        profiler_active_steps=2,
        profiler_repeat=1,
        profiler_with_stack=False,
        profiler_profile_memory=False,
    )
    assert main(["train", *overrides(cfg)]) == 0
    (trace,) = trace_events(folder / "rank_0")  # one cycle: one trace
    assert step_numbers(trace) == [2, 3]  # step 0 waited, step 1 warmed up, 2 and 3 recorded, then nothing
    names = {e.get("name") for e in trace}
    assert any(n and n.startswith("aten::") for n in names)  # the ops of the training step


@pytest.mark.filterwarnings("ignore:Warning. Profiler clears events")  # about events(), not the traces
def test_profiler_schedule_repeats_and_flags_reach_the_trace(tmp_path):
    """The callback alone on a plain loop: repeat: 2 gives two traces; record_shapes / profile_memory / with_stack
    decide what each holds."""

    def run(folder, **keys):
        tr = TrackingArguments(enable_torch_profiler=True, **keys)
        callback = TorchProfilerCallback(tr, folder)
        layer = torch.nn.Linear(8, 8)
        callback.on_train_begin(None, None, None)
        for _ in range(8):
            layer(torch.randn(4, 8)).sum().backward()
            callback.on_step_end(None, None, None)
        callback.on_train_end(None, None, None)
        return trace_events(folder / "rank_0")

    on = run(
        tmp_path / "on", profiler_wait_steps=0, profiler_warmup_steps=1, profiler_active_steps=1, profiler_repeat=2
    )
    assert [step_numbers(t) for t in on] == [[1], [3]]
    events = on[0]
    assert any("Input Dims" in e.get("args", {}) for e in events)  # record_shapes
    assert any(e.get("name") == "[memory]" for e in events)  # profile_memory
    assert any(e.get("cat") == "python_function" for e in events)  # with_stack
    off = run(
        tmp_path / "off",
        profiler_record_shapes=False,
        profiler_profile_memory=False,
        profiler_with_stack=False,
    )
    (events,) = off
    assert step_numbers(events) == [2]  # the defaults: wait 1, warm up 1, record 1, once
    assert not any("Input Dims" in e.get("args", {}) for e in events)
    assert not any(e.get("name") == "[memory]" for e in events)
    assert not any(e.get("cat") == "python_function" for e in events)


def test_profile_modules_times_forward_and_backward_of_matching_modules(train_overrides, tmp_path):
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("tuneforge.train.profiler")
    logger.addHandler(handler)
    try:
        cfg = train_overrides("lora", max_steps=2, profile_modules="*.layers.0.self_attn, *.layers.1.mlp")
        assert main(["train", *overrides(cfg)]) == 0
    finally:
        logger.removeHandler(handler)
    text = "\n".join(r.getMessage() for r in records)
    assert "timing 2 module(s)" in text
    lines = [line for line in text.splitlines() if "layers.0.self_attn:" in line or "layers.1.mlp:" in line]
    assert len(lines) == 4  # both modules, at each of the 2 logging steps
    for line in lines:
        fwd, bwd = (float(part.split()[1]) for part in line.split(": ", 1)[1].split(", "))
        assert fwd > 0 and bwd > 0  # milliseconds
        assert "(1 calls)" in line  # one forward and one backward per step


def test_module_timer_with_no_match_warns(caplog):
    callback = ModuleTimerCallback(["nothing.*"])
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("tuneforge.train.profiler").addHandler(handler)
    try:
        callback.on_train_begin(None, None, None, model=torch.nn.Sequential(torch.nn.Linear(2, 2)))
    finally:
        logging.getLogger("tuneforge.train.profiler").removeHandler(handler)
    assert callback.handles == [] and "no module name matches nothing.*" in records[0].getMessage()


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (["profiler_active_steps=3"], "'profiler_active_steps' has no effect without enable_torch_profiler: true"),
        (["enable_torch_profiler=true", "profiler_active_steps=0"], "profiler_active_steps must be at least 1"),
        (["enable_torch_profiler=true", "profiler_repeat=-1"], "profiler_repeat must be at least 0"),
        (["profile_modules= , "], "profile_modules lists no module pattern"),
        (["enable_torch_profiler=true", "stage=ppo", "reward_model=rm"], "not available with stage ppo"),
    ],
)
def test_profiler_keys_refused_in_one_line(tiny_model_dir, keys, message):
    with pytest.raises(UserError, match=message):
        load_config(None, [f"model_name_or_path={tiny_model_dir}", *keys])
