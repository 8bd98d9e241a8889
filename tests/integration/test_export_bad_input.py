"""Bad input to `tuneforge export`: one line on stderr naming the problem and the fix, exit 2, nothing written."""

from __future__ import annotations

import json
import shutil

import pytest

from tuneforge.cli import main


def expect_error(capsys, keys: dict, *fragments):
    code = main(["export", *[f"{k}={v}" for k, v in keys.items()]])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_quantized_base_is_not_merged(capsys, tiny_model_dir, tmp_path):
    keys = {"model_name_or_path": tiny_model_dir, "quantization_bit": 4, "export_dir": tmp_path / "x"}
    expect_error(capsys, keys, "quantization_bit", "cannot merge adapters into a quantized base", "remove")
    assert not (tmp_path / "x").exists()


def test_adapter_for_another_base(capsys, tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tuneforge.model.tiny import create_tiny_model

    other = create_tiny_model(tmp_path / "other", hidden=64, intermediate=128)
    model = AutoModelForCausalLM.from_pretrained(other)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(tmp_path / "adapter")
    keys = {"model_name_or_path": tiny_model_dir, "adapter_name_or_path": tmp_path / "adapter"}
    expect_error(capsys, {**keys, "export_dir": tmp_path / "x"}, "adapter does not fit this base model")
    assert not (tmp_path / "x").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_export_dir_holding_something_else(capsys, tiny_model_dir, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "weights.bin").write_bytes(b"precious")
    keys = {"model_name_or_path": tiny_model_dir, "export_dir": tmp_path / "x"}
    expect_error(capsys, keys, "export_dir", "holds other files", "export_overwrite")
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["weights.bin"]


def test_missing_export_dir(capsys, tiny_model_dir):
    expect_error(capsys, {"model_name_or_path": tiny_model_dir}, "export_dir is required")


def test_unsupported_arch_for_gguf(capsys, tiny_model_dir, tmp_path):
    folder = shutil.copytree(tiny_model_dir, tmp_path / "mistral")
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="mistral", architectures=["MistralForCausalLM"])
    (folder / "config.json").write_text(json.dumps(config))
    keys = {"model_name_or_path": folder, "export_format": "gguf", "export_dir": tmp_path / "x"}
    expect_error(capsys, keys, "export_format", "llama and qwen2 architectures, not 'mi", "safetensors")
    assert not (tmp_path / "x").exists()


def test_export_quantization_needs_data_then_gpu(capsys, tiny_model_dir, tmp_path):
    import torch

    keys = {"model_name_or_path": tiny_model_dir, "export_dir": tmp_path / "x", "export_quantization_bit": 4}
    expect_error(capsys, keys, "export_quantization_bit needs calibration text", "export_quantization_dataset")
    (tmp_path / "calib.txt").write_text("Some text to calibrate on.\n\nAnother paragraph.")
    keys["export_quantization_dataset"] = tmp_path / "calib.txt"
    expect_error(capsys, {**keys, "export_format": "gguf"}, "not GGUF", "q8_0")
    if not torch.cuda.is_available():
        expect_error(capsys, keys, "needs a CUDA GPU", "pip install gptqmodel")
    assert not (tmp_path / "x").exists()


def test_calibration_texts(tmp_path):
    from tuneforge.export.quantize import calibration_texts

    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n{"instruction": "two", "output": "three"}\n')
    assert sorted(calibration_texts(str(tmp_path / "a.jsonl"), 10)) == ["one", "two\nthree"]
    (tmp_path / "b.txt").write_text("p1\n\np2\n\n\np3")
    assert len(calibration_texts(str(tmp_path / "b.txt"), 2)) == 2


@pytest.mark.gpu
def test_gptq_export_on_gpu(tiny_model_dir, tmp_path):
    """The real GPTQ path: needs CUDA and gptqmodel; the quantized export loads and generates."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    pytest.importorskip("gptqmodel")
    pytest.importorskip("optimum")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuneforge.config import load_config
    from tuneforge.export.run import run_export

    (tmp_path / "calib.txt").write_text("\n\n".join(f"Sample sentence number {i} for calibration." for i in range(64)))
    keys = {
        "model_name_or_path": tiny_model_dir,
        "export_dir": tmp_path / "q",
        "export_quantization_bit": 4,
        "export_quantization_dataset": tmp_path / "calib.txt",
        "export_quantization_nsamples": 32,
        "infer_dtype": "fp16",
    }
    out = run_export(load_config(None, [f"{k}={v}" for k, v in keys.items()]))
    config = json.loads((out / "config.json").read_text())
    assert config["quantization_config"]["bits"] == 4
    model = AutoModelForCausalLM.from_pretrained(out, device_map="cuda")
    ids = AutoTokenizer.from_pretrained(out)("Hello", return_tensors="pt").input_ids.to("cuda")
    assert model.generate(ids, max_new_tokens=4, do_sample=False).shape[1] == ids.shape[1] + 4
