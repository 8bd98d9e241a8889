"""Garbage collection while `tuneforge train` starts (utils/startup_gc.py): off until settled, then on as before
with what start-up left frozen; nothing at all where the CLI did not defer."""

from __future__ import annotations

import gc

import pytest

from tuneforge.utils import startup_gc


@pytest.fixture
def restored_gc():
    yield
    startup_gc.settle()
    gc.enable()
    gc.unfreeze()


def test_settle_without_defer_changes_nothing(restored_gc):
    frozen = gc.get_freeze_count()
    assert startup_gc.settle() is False
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_defer_turns_collection_off_and_settle_back_on_with_start_up_frozen(restored_gc):
    startup_gc.defer()
    assert not gc.isenabled()
    kept = [object() for _ in range(1000)]  # what start-up would import
    frozen = gc.get_freeze_count()
    assert startup_gc.settle() is True
    assert gc.isenabled() and gc.get_freeze_count() >= frozen + 1
    assert startup_gc.settle() is False  # once
    assert kept


def test_a_process_that_turned_collection_off_itself_keeps_it_so(restored_gc):
    """defer() only undoes what it did: settle() leaves a disabled collector disabled."""
    gc.disable()
    startup_gc.defer()
    assert startup_gc.settle() is False and not gc.isenabled()
