"""LLaMA-Factory 0.9.5's own example configs (tests/fixtures/lf_examples, unchanged copies) run as they are on the
tiny models, in a folder laid out like LF's checkout (data/, examples/deepspeed/, saves/ written by earlier
examples): only the base model's path and the number of steps are changed. Those that need hardware or packages
this machine lacks stop in one line with exit code 2, naming the reason that docs/config.md documents."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tuneforge.cli import main
from tuneforge.model.tiny import create_tiny_model

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "tests" / "fixtures" / "lf_examples"
RUN_OUTPUTS = "saves/"  # LF's examples read what earlier examples saved there; any other model path is a base model

# Run in this order: the merge / inference / predict examples read what the training examples saved.
ORDER = ("train_lora", "train_full", "train_qlora", "extras", "merge_lora", "inference")

# example -> a part of the one-line refusal (each a reason docs/config.md gives for the key).
REFUSED = {
    "extras/fp8/llama3_fp8_deepspeed_sft.yaml": "FP8 training needs a CUDA GPU",
    "extras/fp8/llama3_fp8_fsdp_sft.yaml": "FP8 training needs a CUDA GPU",
    "extras/mod/llama3_full_sft.yaml": "mixture-of-depths needs the MoD package",
    "merge_lora/qwen3_gptq.yaml": "CUDA",
    # 4 Ray workers, one CPU each: this machine kind has 2 cores (with 4 or more, the hub dataset_dir is the reason)
    "train_lora/qwen3_lora_sft_ray.yaml": "this machine has" if (os.cpu_count() or 1) < 4 else "hub datasets",
}


# LF ships no `med` / `math` dataset (its docs: bring your own); these two examples train on its identity set instead.
OWN_DATASETS = {"extras/asft/llama2_full_asft.yaml": "identity", "extras/asft/qwen2_full_asft.yaml": "identity"}


def examples() -> list[str]:
    found = [str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.yaml")]
    return sorted(found, key=lambda name: (ORDER.index(name.split("/")[0]), name))


@pytest.fixture(scope="module")
def lf_checkout(tmp_path_factory, tiny_model_dir, tiny_llama_dir):
    """A folder like LF's checkout: data/ and examples/deepspeed/ (ours: same dataset names and ZeRO files), and the
    tiny models. LLaMA Pro's example trains an expanded model (LF: `scripts/llama_pro.py --num_expand 8`): an
    8-layer tiny Llama expanded by 8 with `tuneforge llama-pro`, as its docs say."""
    folder = tmp_path_factory.mktemp("lf")
    (folder / "data").symlink_to(ROOT / "data")
    (folder / "examples").symlink_to(ROOT / "examples")
    deep = create_tiny_model(folder / "models" / "llama-8-layers", arch="llama", layers=8)
    assert main(["llama-pro", str(deep), str(folder / "models" / "llama-pro"), "--num-expand", "8"]) == 0
    models = {"qwen": tiny_model_dir, "llama": tiny_llama_dir, "pro": folder / "models" / "llama-pro"}
    return folder, models


def overrides(name: str, models: dict) -> list[str]:
    cfg = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
    out = []
    model = str(cfg.get("model_name_or_path", ""))
    if model and not model.startswith(RUN_OUTPUTS):
        family = "pro" if cfg.get("use_llama_pro") else "llama" if "llama" in model.lower() else "qwen"
        out.append(f"model_name_or_path={models[family]}")
    if cfg.get("do_train", False) and "stage" in cfg:
        out.append("max_steps=2")
    if cfg.get("do_predict") or name.startswith("inference/"):
        out.append("max_new_tokens=8")  # generation's steps: a random tiny model never ends a reply by itself
    if name in OWN_DATASETS:
        out.append(f"dataset={OWN_DATASETS[name]}")
    return out


@pytest.mark.parametrize("name", examples())
def test_lf_example_runs_or_refuses_in_one_line(name, lf_checkout, capsys):
    folder, models = lf_checkout
    command = {"merge_lora": "export", "inference": "chat"}.get(name.split("/")[0], "train")
    argv = [command, str(EXAMPLES / name), *overrides(name, models)]
    if command == "chat":
        argv += ["--query", "Who are you?"]
    if "deepspeed" in yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8")):
        # DeepSpeed leaves a process group and transformers' ZeRO-3 switch behind: its own process, as in real use
        done = subprocess.run([sys.executable, "-m", "tuneforge", *argv], cwd=folder, capture_output=True, text=True)
        code, err = done.returncode, done.stderr
    else:
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            code = main(argv)
        finally:
            os.chdir(cwd)
        err = capsys.readouterr().err
    if name in REFUSED:
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and REFUSED[name] in lines[0], err
        return
    assert code == 0, err
    cfg = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
    target = cfg.get("export_dir") if command == "export" else cfg.get("output_dir")
    if target and cfg.get("do_train", command == "export"):
        assert any((folder / target).glob("*.safetensors")), f"nothing saved in {target}"
    if cfg.get("do_predict"):  # LF's predict config (no do_train, no dataset): generations for eval_dataset
        assert (folder / target / "generated_predictions.jsonl").is_file()
