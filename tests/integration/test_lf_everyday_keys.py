"""The keys every LLaMA-Factory example config carries run as they are, from a YAML file."""

from __future__ import annotations

import yaml

from tuneforge.cli import main
from tuneforge.utils import run_folder


def test_report_to_none_and_overwrite_output_dir_from_a_yaml_file(train_overrides, tmp_path, capsys):
    cfg = train_overrides("lora", max_steps=2)
    cfg.update(report_to="none", overwrite_output_dir=True)
    path = tmp_path / "qwen3_lora_sft.yaml"
    text = yaml.safe_dump(cfg, sort_keys=False).replace("report_to: none", "report_to: none  # as LF writes it")
    path.write_text(text)
    for _ in range(2):  # the second run overwrites the first
        assert main(["train", str(path)]) == 0, capsys.readouterr().err
    out = tmp_path / "out-lora"
    assert run_folder.is_complete(out) and run_folder.read_config(out)["report_to"] == "none"
    assert not (out / "runs").exists()  # no tracker wrote anything
