"""Our shipped YAML files read through libyaml give exactly what PyYAML's own parser gives (utils/yaml_text.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tuneforge.utils.yaml_text import FastSafeLoader, load_shipped_yaml

SRC = Path(__file__).resolve().parents[2] / "src" / "tuneforge"
SHIPPED = sorted(SRC.rglob("*.yaml"))


def test_pyyaml_here_has_libyaml():
    assert FastSafeLoader is yaml.CSafeLoader  # the wheels on PyPI bundle it; else the pure parser is used


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(SRC)))
def test_each_shipped_file_reads_the_same(path):
    text = path.read_text(encoding="utf-8")
    assert load_shipped_yaml(text) == yaml.safe_load(text)


def test_the_shipped_files_are_found():
    names = {p.name for p in SHIPPED}
    assert {"templates.yaml", "en.yaml", "zh.yaml", "model_families.yaml"} <= names
