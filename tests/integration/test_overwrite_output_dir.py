"""overwrite_output_dir replaces what earlier runs wrote in the folder and nothing else (LLaMA-Factory's example
configs all carry it): the user's own files stay, a model file a save would replace refuses in one line."""

from __future__ import annotations

import json

import yaml

from tuneforge.cli import main
from tuneforge.utils import run_folder


def as_args(cfg: dict) -> list[str]:
    return [f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in cfg.items()]


def test_overwrite_keeps_what_no_run_wrote(train_overrides, tmp_path):
    out = tmp_path / "out-lora"
    cfg = train_overrides("lora", max_steps=2, save_steps=1)
    assert main(["train", *as_args(cfg)]) == 0
    first = run_folder.entries(out)
    assert {"checkpoint-1", "checkpoint-2", "adapter_model.safetensors", run_folder.OUTPUTS_FILE} <= first
    (out / "notes.txt").write_text("mine")
    (out / "mydata").mkdir()
    (out / "mydata" / "x.json").write_text("[]")

    again = {**cfg, "max_steps": 1, "save_steps": 100, "learning_rate": 5e-3, "overwrite_output_dir": True}
    assert main(["train", *as_args(again)]) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "mydata" / "x.json").read_text() == "[]"
    assert not (out / "checkpoint-2").exists()  # the earlier run's checkpoints are gone
    assert yaml.safe_load((out / "config.yaml").read_text())["learning_rate"] == 5e-3
    assert [r["step"] for r in run_folder.read_records(out) if "loss" in r] == [1]  # only this run's curve
    listed = set(json.loads((out / run_folder.OUTPUTS_FILE).read_text())["written"])
    assert "adapter_model.safetensors" in listed and not listed & {"notes.txt", "mydata"}


def test_overwrite_into_a_folder_of_user_files(train_overrides, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    cfg = train_overrides("lora", max_steps=1, output_dir=str(out))
    assert main(["train", *as_args(cfg)]) == 2  # not empty, not a run: refused without overwrite
    assert "overwrite_output_dir" in capsys.readouterr().err
    assert main(["train", *as_args({**cfg, "overwrite_output_dir": True})]) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "adapter_model.safetensors").is_file()


def test_a_user_model_file_a_save_would_replace_is_refused(train_overrides, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "README.md").write_text("my notes on this folder")  # peft's save writes a README.md
    cfg = train_overrides("lora", max_steps=1, output_dir=str(out), overwrite_output_dir=True)
    assert main(["train", *as_args(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "README.md" in err and "output_dir" in err, err
    assert (out / "README.md").read_text() == "my notes on this folder" and run_folder.entries(out) == {"README.md"}


def test_a_llamafactory_run_folder_is_replaced(train_overrides, tmp_path):
    """An LF run folder has no outputs file: its records (trainer_state.json, all_results.json) mark the model files
    beside them as that run's."""
    out = tmp_path / "lf"
    (out / "checkpoint-50").mkdir(parents=True)
    for name in ("adapter_model.safetensors", "adapter_config.json", "README.md", "all_results.json"):
        (out / name).write_text("{}")
    (out / "runs").mkdir()  # tensorboard's, which we cannot tell from a user's folder: it stays
    cfg = train_overrides("lora", max_steps=1, output_dir=str(out), overwrite_output_dir=True)
    assert main(["train", *as_args(cfg)]) == 0
    assert not (out / "checkpoint-50").exists() and "train_loss" in json.loads((out / "all_results.json").read_text())
    assert (out / "adapter_model.safetensors").stat().st_size > 100 and (out / "runs").is_dir()
