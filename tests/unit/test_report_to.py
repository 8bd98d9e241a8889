"""report_to as LLaMA-Factory configs write it: `none` means no reporting on every transformers version; a tracker
that is not installed is one line naming its package."""

from __future__ import annotations

import importlib.util

import pytest

from tuneforge.config.training import report_to
from tuneforge.errors import UserError


@pytest.mark.parametrize("value", ["none", "None", None, ["none"], [None], [], "null"])
def test_none_in_every_spelling_is_no_reporting(value):
    assert report_to(value, "report_to") == "none"


def test_installed_trackers_and_all_pass_through(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name == "wandb" else real(name))
    assert report_to("wandb", "report_to") == "wandb"
    assert report_to(["wandb", "all"], "report_to") == ["wandb", "all"]


def test_a_tracker_that_is_not_installed_names_its_package(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError) as err:
        report_to("tensorboard", "cfg.yaml:7 (report_to)")
    assert "tensorboard package" in err.value.message and "pip install tensorboard" in err.value.fix
    assert err.value.where == "cfg.yaml:7 (report_to)"


@pytest.mark.parametrize(("value", "fragment"), [(["none", "wandb"], "beside"), ("tensorbord", "unknown tracker")])
def test_contradictions_and_typos_are_refused(value, fragment):
    with pytest.raises(UserError, match=fragment):
        report_to(value, "report_to")
