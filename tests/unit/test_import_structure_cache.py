"""transformers' lazy import structure read from disk (utils/import_structure_cache.py): the same answer as
transformers computes, computed once per installation, never stale, and never in the way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.processes import cli_env

from tuneforge.utils.import_structure_cache import (
    StoredStructures,
    cache_folder,
    cached,
    package_fingerprint,
)


def fake_package(root):
    (root / "models" / "a").mkdir(parents=True)
    (root / "__init__.py").write_text("", encoding="utf-8")
    (root / "models" / "__init__.py").write_text("", encoding="utf-8")
    (root / "models" / "a" / "modeling_a.py").write_text("__all__ = ['A']\n", encoding="utf-8")
    return root


class CountingDefine:
    """Stands for transformers' function: a fresh dict per call (as transformers builds one), calls counted."""

    def __init__(self):
        self.calls = []

    def __call__(self, module_path, prefix=None):
        self.calls.append((str(module_path), prefix))
        return {frozenset(): {f"{prefix or ''}.a.modeling_a": {"A"}}}


def test_a_second_process_reads_what_the_first_computed(tmp_path):
    root, folder = fake_package(tmp_path / "pkg"), tmp_path / "cache"
    first = CountingDefine()
    got = cached(first, StoredStructures(root, folder))(root / "models", prefix="models")
    assert got == {frozenset(): {"models.a.modeling_a": {"A"}}} and len(first.calls) == 1

    second = CountingDefine()  # a new process: a new wrapper over the same folder
    again = cached(second, StoredStructures(root, folder))(root / "models", prefix="models")
    assert again == got and second.calls == []


def test_one_object_per_question_within_a_process(tmp_path):
    define = cached(CountingDefine(), StoredStructures(fake_package(tmp_path / "pkg"), tmp_path / "cache"))
    assert define(tmp_path / "pkg" / "models") is define(tmp_path / "pkg" / "models")  # as transformers' lru_cache


def test_what_is_stored_is_what_was_returned_not_what_the_caller_made_of_it(tmp_path):
    """transformers/__init__.py adds its own names to the models' structure it is given."""
    root, folder = fake_package(tmp_path / "pkg"), tmp_path / "cache"
    define = cached(CountingDefine(), StoredStructures(root, folder))
    define(root / "models", prefix="models")[frozenset()]["added_by_the_caller"] = {"X"}
    define(root / "models" / "a" / "__init__.py")  # a later store writes the file again

    fresh = cached(CountingDefine(), StoredStructures(root, folder))(root / "models", prefix="models")
    assert "added_by_the_caller" not in fresh[frozenset()]


def test_an_edited_or_added_source_file_is_a_new_fingerprint(tmp_path):
    root = fake_package(tmp_path / "pkg")
    before = package_fingerprint(root)
    assert package_fingerprint(root) == before
    modeling = root / "models" / "a" / "modeling_a.py"
    modeling.write_text("__all__ = ['A', 'B']\n", encoding="utf-8")
    edited = package_fingerprint(root)
    assert edited != before
    (root / "models" / "a" / "configuration_a.py").write_text("", encoding="utf-8")
    assert package_fingerprint(root) not in (before, edited)

    define = CountingDefine()
    cached(CountingDefine(), StoredStructures(root, tmp_path / "cache"))(root / "models")
    modeling.write_text("__all__ = ['A', 'B', 'C']\n", encoding="utf-8")
    cached(define, StoredStructures(root, tmp_path / "cache"))(root / "models")
    assert len(define.calls) == 1  # computed again: the stored answer was for the old files


def test_an_unwritable_folder_or_a_damaged_file_only_costs_the_computation(tmp_path):
    root = fake_package(tmp_path / "pkg")
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    define = CountingDefine()
    assert cached(define, StoredStructures(root, blocker / "cache"))(root / "models") and len(define.calls) == 1

    folder = tmp_path / "cache"
    stored = StoredStructures(root, folder)
    folder.mkdir()
    stored.path.write_text("{not json", encoding="utf-8")
    define = CountingDefine()
    assert cached(define, stored)(root / "models") and len(define.calls) == 1
    assert isinstance(json.loads(stored.path.read_text()), dict)  # replaced by a whole, good file
    assert [p.name for p in folder.iterdir()] == [stored.path.name]  # nothing left aside


def test_the_cache_folder_is_under_tuneforge_cache_else_xdg_cache_home(tmp_path):
    folder = "transformers-import-structure"
    assert cache_folder({"TUNEFORGE_CACHE": str(tmp_path), "XDG_CACHE_HOME": "/x"}) == tmp_path / folder
    assert cache_folder({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "tuneforge" / folder
    assert cache_folder({}).parts[-3:] == (".cache", "tuneforge", folder)


REAL = textwrap.dedent(
    """
    import json, sys
    from tuneforge.utils import import_structure_cache
    assert import_structure_cache.install()
    import transformers
    from transformers.utils import import_utils
    from transformers.models.auto import modeling_auto  # a lazily imported model package asks too
    wrapped = import_utils.define_import_structure
    original = wrapped.__wrapped__
    root = transformers.__file__.rsplit("/", 1)[0]
    same = original(root + "/models", "models") == wrapped(root + "/models", "models")
    print(json.dumps({"patched": getattr(wrapped, "_tuneforge", False), "same": same,
                      "lazy": transformers.AutoModelForCausalLM.__name__}))
    """
)


def test_transformers_imports_through_the_cache_with_its_own_answer(tmp_path):
    """Twice in fresh processes: the first computes and stores, the second reads; transformers works in both."""
    env = cli_env(TUNEFORGE_CACHE=str(tmp_path / "tuneforge"))
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", REAL], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        seen = json.loads(done.stdout.splitlines()[-1])
        assert seen == {"patched": True, "same": True, "lazy": "AutoModelForCausalLM"}
    stored = list((tmp_path / "tuneforge" / "transformers-import-structure").iterdir())
    assert len(stored) == 1 and stored[0].name.startswith("structure-")
    keys = set(json.loads(stored[0].read_text()))
    assert {"models\0models", os.path.join("models", "__init__.py") + "\0"} <= keys  # transformers' two big asks


def test_a_structure_reads_back_as_transformers_built_it():
    from tuneforge.utils.import_structure_cache import decode, encode

    structure = {frozenset(): {"models.a.modeling_a": {"A", "B"}}, frozenset({"torch", "vision"}): {"m.x": {"X"}}}
    assert decode(json.loads(json.dumps(encode(structure)))) == structure
