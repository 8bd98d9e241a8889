"""export_quantization_method picks the backend that quantizes an export (export/quantize.py QUANTIZERS): it offers
exactly the backends the export has (GPTQ, as LLaMA-Factory), and any other value stops at config load in one line."""

from __future__ import annotations

import typing

import pytest

from tuneforge.config import load_config
from tuneforge.config.fields import choices
from tuneforge.config.model_args import ModelArguments
from tuneforge.errors import UserError
from tuneforge.export import quantize


def test_the_choices_are_the_backends_the_export_has():
    assert choices(typing.get_type_hints(ModelArguments)["export_quantization_method"]) == list(quantize.QUANTIZERS)


def test_the_method_chooses_the_quantizer(monkeypatch):
    calls = []
    monkeypatch.setitem(quantize.QUANTIZERS, "gptq", lambda *args: calls.append(args))
    cfg = load_config(None, {"model_name_or_path": "m", "export_quantization_method": "gptq"})
    quantize.quantize("item", cfg, "staging", "folder")
    assert calls == [("item", cfg, "staging", "folder")]


@pytest.mark.parametrize("value", ["awq", "bnb", "gguf"])
def test_a_backend_the_export_lacks_is_refused_in_one_line(value):
    with pytest.raises(UserError) as caught:
        load_config(None, {"model_name_or_path": "m", "export_quantization_method": value})
    text = str(caught.value)
    assert f"'{value}' is not one of: gptq" in text and "\n" not in text
    assert "export_quantization_method" in caught.value.where
