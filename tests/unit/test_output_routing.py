"""Output routing (utils/logging.py), the optional backends a config uses (config/backends.py), holding back the
others (utils/imports.py), and training arguments that name checkpointing without a FutureWarning."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import sys
import warnings

import pytest

from tuneforge.config import load_config
from tuneforge.config.backends import backends_used
from tuneforge.utils import logging as tf_logging
from tuneforge.utils.imports import OPTIONAL_BACKENDS, hold_back, release

LIBRARY_FILE = "/somewhere/site-packages/somelib/module.py"


@pytest.fixture
def routed(monkeypatch):
    """configure_output for one test, our handler writing into a buffer; everything it changes is put back."""
    ours = tf_logging.get_logger("tuneforge")
    handler = next(h for h in ours.handlers if type(h) is logging.StreamHandler)
    buffer = io.StringIO()
    monkeypatch.setattr(handler, "stream", buffer)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    level, root = ours.level, logging.getLogger()
    before = list(root.handlers)

    def configure(debug: bool) -> io.StringIO:
        tf_logging.configure_output(debug=debug)
        return buffer

    yield configure
    ours.setLevel(level)
    for extra in [h for h in root.handlers if h not in before]:
        root.removeHandler(extra)


def _emit_all() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        logging.getLogger("somelib.sub").warning("a library warning")
        logging.getLogger("somelib.sub").error("a library error")
        warnings.showwarning(FutureWarning("old name"), FutureWarning, LIBRARY_FILE, 7)
        warnings.showwarning(UserWarning("bf16 is slow here"), UserWarning, tf_logging.__file__, 1)


def test_plain_output_keeps_our_warnings_and_library_errors(routed):
    out = routed(debug=False)
    _emit_all()
    lines = out.getvalue().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "ERROR somelib.sub: a library error",
        "WARNING tuneforge.warnings: bf16 is slow here",
    ]


def test_debug_shows_library_warnings_at_debug(routed):
    out = routed(debug=True)
    _emit_all()
    lines = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == [
        "DEBUG somelib.sub: a library warning",
        "ERROR somelib.sub: a library error",
        f"DEBUG py.warnings: FutureWarning: old name ({LIBRARY_FILE}:7)",
        "WARNING tuneforge.warnings: bf16 is slow here",
    ]


def test_configure_output_twice_adds_one_handler(routed):
    routed(debug=False)
    routed(debug=False)
    assert sum(isinstance(h, tf_logging.LibraryRecords) for h in logging.getLogger().handlers) == 1


def _model(tmp_path, name="m", **config):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2", **config}), encoding="utf-8")
    return str(folder)


def test_a_plain_lora_config_uses_no_optional_backend(tmp_path):
    assert backends_used({"model_name_or_path": _model(tmp_path), "finetuning_type": "lora"}) == set()


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"quantization_bit": 4}, {"bitsandbytes"}),
        ({"quantization_bit": 8, "quantization_method": "bnb"}, {"bitsandbytes"}),
        ({"quantization_bit": 4, "quantization_method": "hqq"}, {"hqq"}),
        ({"optim": "paged_adamw_8bit"}, {"bitsandbytes"}),
        ({"optim": "adamw_bnb_8bit"}, {"bitsandbytes"}),
        ({"optim": "lion_32bit"}, {"bitsandbytes"}),
        ({"optim": "adamw_torch"}, set()),
        ({"use_galore": True}, {"bitsandbytes"}),  # galore_torch imports bitsandbytes
        ({"deepspeed": "examples/deepspeed/ds_z2_config.json"}, {"deepspeed"}),
        ({"infer_backend": "vllm"}, set(OPTIONAL_BACKENDS)),
    ],
)
def test_what_a_config_names_keeps_its_backend(tmp_path, keys, expected):
    assert backends_used({"model_name_or_path": _model(tmp_path), **keys}) == expected


def test_deepspeed_through_accelerate_launch(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    assert backends_used({"model_name_or_path": _model(tmp_path)}) == {"deepspeed"}


def test_a_model_we_cannot_see_keeps_the_quantization_backends(tmp_path):
    quantized = _model(tmp_path, quantization_config={"quant_method": "bitsandbytes", "load_in_4bit": True})
    assert backends_used({"model_name_or_path": quantized}) == {"bitsandbytes", "hqq"}
    not_cached = {"model_name_or_path": "no-such-org/no-such-model", "cache_dir": str(tmp_path / "cache")}
    assert backends_used(not_cached) == {"bitsandbytes", "hqq"}
    assert backends_used({"model_name_or_path": _model(tmp_path, "plain"), "ref_model": quantized}) == {
        "bitsandbytes",
        "hqq",
    }


def test_an_adapter_folder_is_judged_by_its_base(tmp_path):
    base = _model(tmp_path)
    rm_run = tmp_path / "rm-run"
    rm_run.mkdir()
    (rm_run / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base}), encoding="utf-8")
    assert backends_used({"model_name_or_path": base, "reward_model": str(rm_run)}) == set()


def test_hold_back_makes_a_module_unimportable_and_leaves_imported_ones():
    name = "tuneforge_test_never_a_module"
    try:
        assert hold_back([name, "json"]) == [name]
        assert importlib.util.find_spec(name) is None  # what the libraries' availability checks ask
        with pytest.raises(ModuleNotFoundError):
            __import__(name)
        assert sys.modules["json"] is json
    finally:
        sys.modules.pop(name, None)


def test_release_makes_a_held_back_module_importable_again(tmp_path, monkeypatch):
    name = "tuneforge_test_release_probe"  # a module of this test's own, imported by nothing else
    (tmp_path / f"{name}.py").write_text("VALUE = 1\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        hold_back([name])
        with pytest.raises(ModuleNotFoundError):
            __import__(name)
        assert release([name, "json"]) == [name]  # json was never held back: left as it is
        assert __import__(name).VALUE == 1 and sys.modules["json"] is json
    finally:
        sys.modules.pop(name, None)


def test_checkpointing_goes_by_its_new_name_without_a_future_warning(tiny_model_dir, tmp_path):
    from tuneforge.train.arguments import build_training_arguments

    base = {"model_name_or_path": str(tiny_model_dir), "template": "qwen", "finetuning_type": "lora"}
    for given, expected in (({}, False), ({"gradient_checkpointing": True}, True)):
        cfg = load_config(None, {**base, **given})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            args = build_training_arguments(cfg, str(tmp_path))
        assert not [w for w in caught if "checkpointing" in str(w.message)], [str(w.message) for w in caught]
        assert args.activation_checkpointing is expected and args.gradient_checkpointing is expected
