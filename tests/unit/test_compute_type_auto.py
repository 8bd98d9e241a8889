"""`compute_type: auto` on each kind of machine, whatever machine runs the test: the CPU-flag reader and the CUDA
checks are replaced by each case's answers; what is asserted is the dtype the model trains in and the
TrainingArguments' bf16 / fp16 switches (bf16 autocast, fp16 with the Trainer's loss scaler)."""

from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch
from transformers import Seq2SeqTrainingArguments

from tuneforge.config import load_config
from tuneforge.model.estimate import _compute_bytes
from tuneforge.train import arguments
from tuneforge.utils import devices, env_info

# name: (CUDA available, CUDA bf16, the CPU's native bf16 instructions) -> what auto trains in
MACHINES = {
    "amx": ((False, False, ("AMX-BF16", "AVX512-BF16")), "bf16", "this CPU has AMX-BF16 and AVX512-BF16"),
    "avx512_bf16": ((False, False, ("AVX512-BF16",)), "bf16", "this CPU has AVX512-BF16"),
    "avx2_only": ((False, False, ()), "fp32", "no native bf16 on this CPU"),
    "cuda_bf16": ((True, True, ()), "bf16", "this GPU supports bf16"),
    "cuda_no_bf16": ((True, False, ()), "fp16", "this GPU has no bf16; fp16 with a loss scaler"),
}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


class Unchecked(Seq2SeqTrainingArguments):
    """The arguments as built, without __post_init__'s device checks (no GPU here for the CUDA cases)."""

    def __post_init__(self):
        pass


@pytest.fixture
def machine(monkeypatch):
    """machine(name): this process now sees that machine; TUNEFORGE_CPU_BF16 (the suite's fp32 pin) unset."""
    monkeypatch.delenv(devices.CPU_BF16_ENV, raising=False)

    def become(name: str) -> None:
        (cuda, cuda_bf16, features), _, _ = MACHINES[name]
        monkeypatch.setattr(devices, "has_cuda", lambda: cuda)
        monkeypatch.setattr(arguments, "has_cuda", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: cuda_bf16)
        monkeypatch.setattr(devices, "cpu_bf16_features", lambda: features)

    return become


def config(**keys):
    base = {"model_name_or_path": "m", "dataset": "d", "gradient_checkpointing": False}
    return load_config(None, {**base, **keys})


def built(cfg, tmp_path):
    return arguments.build_training_arguments(cfg, str(tmp_path), cls=Unchecked)


@pytest.mark.parametrize("name", MACHINES)
def test_auto_picks_per_machine_and_sets_the_trainer_switches(machine, name, tmp_path):
    machine(name)
    _, chosen, why = MACHINES[name]
    assert devices.auto_compute_type() == (chosen, why)
    cfg = config()
    assert arguments.compute_dtype(cfg) == DTYPES[chosen]
    args = built(cfg, tmp_path)
    assert (args.bf16, args.fp16) == (chosen == "bf16", chosen == "fp16")
    assert _compute_bytes(cfg, devices.has_cuda()) == (4 if chosen == "fp32" else 2)  # what estimate counts
    assert env_info.collect()["compute_type auto"].startswith(f"{chosen} ({why})")  # `tuneforge env` says it too


@pytest.mark.parametrize("method", ["full", "freeze"])
@pytest.mark.parametrize("name", MACHINES)
def test_auto_trains_full_and_freeze_like_adapters(machine, name, method, tmp_path):
    """Full / freeze tuning keeps fp32 master weights under a 16-bit compute type (test_master_weights.py), so auto
    picks the same as for adapters: bf16 autocast on a native-bf16 CPU too."""
    machine(name)
    chosen = MACHINES[name][1]
    cfg = config(finetuning_type=method)
    assert arguments.compute_dtype(cfg) == DTYPES[chosen]
    args = built(cfg, tmp_path)
    assert (args.bf16, args.fp16) == (chosen == "bf16", chosen == "fp16")
    assert _compute_bytes(cfg, devices.has_cuda()) == (4 if chosen == "fp32" else 2)


@pytest.mark.parametrize("name", ["amx", "avx512_bf16"])
def test_auto_keeps_badam_on_fp32_on_a_cpu(machine, name):
    """BAdam updates its block in the model's dtype: no fp32 master weights, so a CPU keeps it on fp32."""
    machine(name)
    cfg = config(finetuning_type="full", use_badam=True)
    assert arguments.compute_dtype(cfg) == torch.float32
    assert devices.auto_compute_type(master_weights=False)[1].endswith("but BAdam would update bf16 weights")


@pytest.mark.parametrize("name", MACHINES)
@pytest.mark.parametrize(
    ("keys", "chosen"),
    [
        ({"compute_type": "fp32"}, "fp32"),
        ({"compute_type": "bf16"}, "bf16"),
        ({"bf16": True}, "bf16"),
        ({"fp16": True}, "fp16"),
    ],
)
def test_an_explicit_precision_wins_everywhere(machine, name, keys, chosen, tmp_path):
    machine(name)
    cfg = config(**keys)
    with pytest.warns(UserWarning) if chosen == "fp16" and not devices.has_cuda() else nullcontext():
        assert arguments.compute_dtype(cfg) == DTYPES[chosen]
        args = built(cfg, tmp_path)
    assert (args.bf16, args.fp16) == (chosen == "bf16", chosen == "fp16")


def test_pure_bf16_loads_bf16_without_autocast(machine, tmp_path):
    machine("amx")
    cfg = config(compute_type="pure_bf16")
    assert arguments.compute_dtype(cfg) == torch.bfloat16
    assert (built(cfg, tmp_path).bf16, built(cfg, tmp_path).fp16) == (False, False)


def test_the_environment_keeps_a_bf16_cpu_on_fp32(machine, monkeypatch):
    machine("amx")
    monkeypatch.setenv(devices.CPU_BF16_ENV, "0")
    chosen, why = devices.auto_compute_type()
    assert chosen == "fp32" and why == "TUNEFORGE_CPU_BF16=0, though this CPU has AMX-BF16 and AVX512-BF16"
    assert arguments.compute_dtype(config()) == torch.float32
    monkeypatch.setenv(devices.CPU_BF16_ENV, "1")
    assert devices.auto_compute_type()[0] == "bf16"


@pytest.mark.parametrize("name", MACHINES)
def test_inference_auto_is_not_changed(machine, name):
    """infer_dtype: auto (chat, API, evaluation) stays fp32 on every CPU, bf16 / fp16 on CUDA as before."""
    machine(name)
    want = {"cuda_bf16": torch.bfloat16, "cuda_no_bf16": torch.float16}.get(name, torch.float32)
    assert devices.resolve_dtype("auto", "infer_dtype") == want


@pytest.mark.parametrize(("name", "line"), [("amx", "bf16 (this CPU has"), ("avx2_only", "fp32 (no native bf16")])
def test_one_log_line_says_what_auto_chose(machine, monkeypatch, name, line):
    machine(name)
    lines = []
    monkeypatch.setattr(arguments.logger, "info", lambda msg, *a: lines.append(msg % a))
    arguments.log_precision(config())
    assert len(lines) == 1 and lines[0].startswith(f"compute_type auto: {line}")
    lines.clear()
    arguments.log_precision(config(compute_type="fp32"))
    assert lines == []  # an explicit choice is the user's: nothing to explain


def test_the_flag_reader_reads_whole_flags(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor : 0\nflags : fpu avx2 avx512f avx512_bf16 amx_tile\nbugs : x\n", encoding="utf-8")
    real_open = open
    monkeypatch.setattr(
        "builtins.open", lambda path, *a, **k: real_open(cpuinfo if path == "/proc/cpuinfo" else path, *a, **k)
    )
    devices.cpu_bf16_features.cache_clear()
    try:
        assert devices.cpu_bf16_features() == ("AVX512-BF16",)  # amx_tile is not amx_bf16
        cpuinfo.write_text("flags : fpu avx2 fma\nbugs : amx_bf16_is_not_a_flag_line\n", encoding="utf-8")
        devices.cpu_bf16_features.cache_clear()
        assert devices.cpu_bf16_features() == ()
    finally:
        devices.cpu_bf16_features.cache_clear()
