"""Every key of our argument groups is read by the code, or refused: a key that parses and is read nowhere does
nothing, silently (as issue 16 found). Read from the AST of every module under src/tuneforge, so a key's own
declaration, its help text, docstrings and error locations (`where=`, `fix=`, `cfg.where(...)`) never count."""

from __future__ import annotations

import ast
import dataclasses
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

from tuneforge.config.loader import GROUPS
from tuneforge.train.optim import LOW_RANK_OPTIMIZERS

SRC = Path(__file__).resolve().parents[2] / "src" / "tuneforge"
# The Web UI lists keys by name to build its form (webui/form.py): showing a key is not using it.
FACES_THAT_ONLY_SHOW_KEYS = ("webui/",)
LOCATION_KEYWORDS = ("where", "fix")  # UserError(..., where="key", fix="remove key"): names a key, reads nothing

# Keys the code reads under a name built at run time, which no AST search can see. One line of why each.
ALLOWED: dict[str, str] = {}


def generic_reads() -> dict[str, str]:
    """Keys read through a table, found from the table itself: train/optim.py reads `use_<method>` and
    `<method>_<key>` with getattr for GaLore / APOLLO (LOW_RANK_OPTIMIZERS)."""
    out = {}
    for method, (_, arg_keys) in LOW_RANK_OPTIMIZERS.items():
        for key in ("layerwise", "target", *arg_keys.values()):
            out[f"{method}_{key}"] = "train/optim.py optimizer_training_args"
        out[f"use_{method}"] = "train/optim.py optimizer_training_args"
    return out


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """Nodes that name a key without reading it: docstrings, error locations and fixes."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr == "where":
                skip.update(id(n) for arg in node.args for n in ast.walk(arg))
            for kw in node.keywords:
                if kw.arg in LOCATION_KEYWORDS:
                    skip.update(id(n) for n in ast.walk(kw.value))
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
    return skip


def names_read(tree: ast.AST):
    """`x.key` (loaded, not assigned) and "key" as a whole string constant (getattr(x, "key"), d["key"], lists of
    keys a function walks), outside docstrings and error locations."""
    skip = _skipped_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            yield node.attr
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value


@cache
def readers() -> dict[str, set[str]]:
    """name -> the modules (relative to src/tuneforge) that read it."""
    out: dict[str, set[str]] = defaultdict(set)
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(FACES_THAT_ONLY_SHOW_KEYS):
            continue
        for name in names_read(ast.parse(path.read_text(encoding="utf-8"))):
            out[name].add(rel)
    return out


def schema_keys() -> list[tuple[str, dataclasses.Field]]:
    return [(f.name, f) for cls in GROUPS.values() for f in dataclasses.fields(cls)]


@pytest.mark.parametrize("key", [k for k, f in schema_keys() if not f.metadata.get("refused")])
def test_every_schema_key_is_read_somewhere_or_refused(key):
    found = readers().get(key) or generic_reads().get(key) or ALLOWED.get(key)
    assert found, (
        f"'{key}' is read nowhere under src/tuneforge: make it take effect (and name its test in EFFECT_TESTS of "
        "tests/unit/test_lf_keys.py), or refuse it with opt(..., refused=(why, fix))"
    )


def test_the_allow_list_is_short_and_names_real_keys():
    keys = {k for k, _ in schema_keys()}
    assert len(ALLOWED) <= 5 and all(k in keys and why for k, why in ALLOWED.items())
    assert set(generic_reads()) <= keys  # the table names real keys, so the generic reads stay honest


def test_the_search_sees_reads_and_not_declarations():
    tree = ast.parse(
        '"""docstring: some_key"""\n'
        "class A:\n    declared_only: int = opt(0, 'help naming declared_only')\n"
        "def f(cfg):\n"
        "    cfg.written = 1\n"
        "    raise UserError('x', where=cfg.where('located'), fix='fixed')\n"
        "    return cfg.data.attr_read, getattr(cfg, 'getattr_read'), cfg.training.get('dict_read')\n"
    )
    names = set(names_read(tree))
    assert {"attr_read", "getattr_read", "dict_read"} <= names
    assert not names & {"declared_only", "written", "located", "fixed", "some_key"}
