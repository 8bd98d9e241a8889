"""utils/onednn_cache.py: a training process bounds oneDNN's and ideep's primitive caches unless the user set them."""

import os
import sys

from tuneforge.errors import UserError
from tuneforge.utils.onednn_cache import CAPACITY, ENV, IDEEP_CAPACITY, IDEEP_ENV, OLD_ENV, bound_primitive_cache


def test_set_unless_the_user_has():
    environ = {}
    bound_primitive_cache(environ)
    assert environ == {ENV: str(CAPACITY), IDEEP_ENV: str(IDEEP_CAPACITY)}
    for name in (ENV, OLD_ENV):
        environ = {name: "1024"}
        bound_primitive_cache(environ)
        assert environ == {name: "1024", IDEEP_ENV: str(IDEEP_CAPACITY)}
    environ = {IDEEP_ENV: "1024"}
    bound_primitive_cache(environ)
    assert environ == {ENV: str(CAPACITY), IDEEP_ENV: "1024"}


def test_the_train_command_sets_it_before_the_reexec(monkeypatch):
    """What ENV holds when `tuneforge train` reaches the allocator's re-exec (before the CLI, before torch)."""
    import tuneforge.__main__ as entry

    for name in (ENV, OLD_ENV, IDEEP_ENV):
        monkeypatch.setenv(name, "")  # recorded, so that the test's change is undone after it
        monkeypatch.delenv(name)
    seen = []

    def stop():
        seen.append((os.environ.get(ENV), os.environ.get(IDEEP_ENV)))
        raise UserError("stop here")

    monkeypatch.setattr(entry, "reexec_with_allocator", stop)
    monkeypatch.setattr(sys, "argv", ["tuneforge", "train", "cfg.yaml"])
    assert entry.main() == 2
    assert seen == [(str(CAPACITY), str(IDEEP_CAPACITY))]
