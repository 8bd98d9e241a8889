"""Shared fixtures: offline, one torch thread, tiny models built by TuneForge itself (cached per session)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# compute_type auto trains in bf16 on a CPU with AMX / AVX512-BF16: the suite's loss curves, resume equality and
# learning thresholds were made in fp32 and must not change with the CI machine's CPU. Subprocesses inherit it.
# Tests of the choice itself unset it (tests/unit/test_compute_type_auto.py); set it to 1 to run the suite in bf16.
os.environ.setdefault("TUNEFORGE_CPU_BF16", "0")
# Our caches (transformers' import structure, tokenized data; utils/cache_home.py) go to a folder of this process,
# so a test never reads what another run, or the developer's own runs, left there. Subprocesses inherit it.
_CACHE = tempfile.mkdtemp(prefix="tuneforge-test-cache-")
os.environ.setdefault("TUNEFORGE_CACHE", _CACHE)
atexit.register(shutil.rmtree, _CACHE, True)

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random Qwen2 model + byte-level BPE tokenizer (zh + en) with a chat template."""
    from tuneforge.model.tiny import create_tiny_model

    return create_tiny_model(tmp_path_factory.mktemp("models") / "tiny-qwen2", arch="qwen2")


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    from tuneforge.model.tiny import create_tiny_model

    return create_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama", arch="llama")


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory):
    """tiny_vlm_dir(arch="qwen2_vl"): the folder of a tiny random vision-language model of that family
    (model.tiny_vlm.VLM_ARCHS), built once per session."""
    from tuneforge.model.tiny_vlm import create_tiny_vlm

    built = {}

    def build(arch: str = "qwen2_vl"):
        if arch not in built:
            built[arch] = create_tiny_vlm(tmp_path_factory.mktemp("models") / f"tiny-{arch}", arch)
        return built[arch]

    return build


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


# Three replies that think first: a LoRA on the tiny model learns them by heart, so greedy decoding writes them back.
THINK_ROWS = [
    {"instruction": "Who are you?", "output": "<think>\nA name question.\n</think>\n\nI am Forge."},
    {"instruction": "Add 2 and 3.", "output": "<think>\n2 plus 3 is 5.\n</think>\n\nThe sum is 5."},
    {"instruction": "Name a colour.", "output": "<think>\nPick one.\n</think>\n\nBlue."},
]


@pytest.fixture(scope="session")
def thinking_adapter_dir(tiny_model_dir, tmp_path_factory):
    """The run folder of a LoRA on the tiny model trained (template qwen3) until it thinks as THINK_ROWS do."""
    import json

    from tuneforge.config import load_config
    from tuneforge.train.run import run_training

    folder = tmp_path_factory.mktemp("think")
    (folder / "think.json").write_text(json.dumps(THINK_ROWS), encoding="utf-8")
    (folder / "dataset_info.json").write_text(json.dumps({"think": {"file_name": "think.json"}}), encoding="utf-8")
    cfg = {
        "model_name_or_path": str(tiny_model_dir),
        "dataset": "think",
        "dataset_dir": str(folder),
        "template": "qwen3",
        "finetuning_type": "lora",
        "cutoff_len": 64,
        "output_dir": str(folder / "out"),
        "per_device_train_batch_size": 3,
        "max_steps": 60,
        "learning_rate": 1e-2,
        "lr_scheduler_type": "constant",
        "seed": 0,
        "disable_tqdm": True,
        "save_steps": 1000,
    }
    return run_training(load_config(None, cfg))
