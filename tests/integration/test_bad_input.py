"""Every bad input of the foundation: one line on stderr naming the problem and the fix, exit 2, nothing written."""

from __future__ import annotations

import json

import pytest

from tuneforge.cli import main


def run_cli(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err.strip()


def as_args(cfg: dict) -> list[str]:
    return [f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in cfg.items()]


def expect_error(capsys, argv, *fragments):
    code, err = run_cli(capsys, argv)
    assert code == 2, err
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("tuneforge: error: ")
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_malformed_dataset_names_file_and_line(capsys, train_overrides, data_dir, tmp_path):
    (data_dir / "toy.json").write_text('[\n {"instruction": "a", "output": "b"},\n {"instruction": "c" "output"}\n]')
    cfg = train_overrides("lora")
    expect_error(capsys, ["train", *as_args(cfg)], "toy.json:3", "invalid JSON")
    assert not (tmp_path / "out-lora").exists()


def test_missing_column(capsys, train_overrides, data_dir):
    (data_dir / "toy.json").write_text(json.dumps([{"instruction": "a", "answer": "b"}]))
    expect_error(capsys, ["train", *as_args(train_overrides("lora"))], "toy.json:", "'output'")


def test_dataset_empty_after_filtering_says_why(capsys, train_overrides, data_dir):
    # a plain-text file registered for SFT: prompts with no responses, nothing to train on
    rows = [{"text": "only a question"}] * 3
    (data_dir / "toy.json").write_text(json.dumps(rows))
    info = {"toy": {"file_name": "toy.json", "columns": {"prompt": "text"}}}
    (data_dir / "dataset_info.json").write_text(json.dumps(info))
    expect_error(
        capsys, ["train", *as_args(train_overrides("lora"))], "empty after filtering", "3 × no assistant response"
    )


def test_unknown_template(capsys, train_overrides):
    expect_error(capsys, ["train", *as_args(train_overrides("lora", template="qwen3x"))], "qwen3x")


def test_unknown_dataset_suggests(capsys, train_overrides):
    expect_error(capsys, ["train", *as_args(train_overrides("lora", dataset="toi"))], "toi", "toy")


def test_model_path_that_does_not_exist(capsys, train_overrides, tmp_path):
    cfg = train_overrides("lora", model_name_or_path="models/Qwen2.5-7B-Instruct")
    expect_error(capsys, ["train", *as_args(cfg)], "models/Qwen2.5-7B-Instruct", "does not exist")


def test_folder_that_is_not_a_model(capsys, train_overrides, tmp_path):
    cfg = train_overrides("lora", model_name_or_path=str(tmp_path))
    expect_error(capsys, ["train", *as_args(cfg)], "config.json")


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ({"freeze_trainable_layers": 2}, "freeze_trainable_layers"),
        ({"finetuning_type": "full", "quantization_bit": 4}, "quantization_bit"),
    ],
)
def test_conflicting_options(capsys, train_overrides, extra, fragment):
    cfg = train_overrides("lora")
    cfg.update(extra)
    expect_error(capsys, ["train", *as_args(cfg)], fragment)


def test_unknown_key_in_file(capsys, tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("model_name_or_path: m\nlora_rnk: 8\n")
    expect_error(capsys, ["train", str(path)], "cfg.yaml:2", "did you mean 'lora_rank'")


def test_output_dir_with_another_run_is_kept(capsys, train_overrides, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "config.yaml").write_text("model_name_or_path: other\ndataset: other\n")
    (out / "adapter_model.safetensors").write_bytes(b"precious")
    cfg = train_overrides("lora", output_dir=str(out))
    expect_error(capsys, ["train", *as_args(cfg)], "output_dir", "overwrite_output_dir")
    assert (out / "adapter_model.safetensors").read_bytes() == b"precious"


def test_finished_run_is_not_overwritten_without_permission(capsys, train_overrides):
    cfg = train_overrides("lora", max_steps=1)
    assert main(["train", *as_args(cfg)]) == 0
    capsys.readouterr()
    expect_error(capsys, ["train", *as_args(cfg)], "finished run", "overwrite_output_dir")
    assert main(["train", *as_args({**cfg, "overwrite_output_dir": True})]) == 0


def test_debug_shows_the_traceback(train_overrides):
    from tuneforge.errors import UserError

    with pytest.raises(UserError):
        main(["--debug", "train", *as_args(train_overrides("lora", template="nope"))])
