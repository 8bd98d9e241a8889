"""The package's import graph, read from the source: no cycle, no upward import, and a light `tuneforge --help`.

Layers (shared/DESIGN.md), top to bottom; a module imports its own layer or the ones below, never above:

    faces      cli, __main__, webui/, api/, warm/
    workflows  train/, chat/, export/, evaluate/, jobs/, sweep/
    blocks     data/, model/
    schema     config/
    base       errors.py, utils/, the package root (tuneforge/__init__.py: __version__)

How the edges are counted:
- Every `import` / `from ... import` of a TuneForge module is an edge: at module level, under `if TYPE_CHECKING:`, and
  inside functions. A function-level import is still an edge — it may be late for start-up time, never to hide a
  cycle or to reach upward — so the cycle check and the layer check both run over all of them. (Our own modules are
  imported at the top; what remains inside functions is third-party: torch, transformers, gradio, ...)
- `from tuneforge.x import y` is an edge to `tuneforge.x.y` when that is a module, else to `tuneforge.x` (its
  `__init__`); relative imports are resolved first.
- `importlib.import_module(f"tuneforge.train.{stage}")` (train/run.py finding a stage's recipe by name) is not a
  static import and is not an edge: that is how `tuneforge train` imports one recipe, and the recipes' heavy
  libraries, only when a run of that stage starts.

Nuances the layer table leaves open, as the code has them:
- Packages of one layer may import each other as long as no cycle forms: train uses evaluate's predict
  (do_predict) and token accuracy (compute_accuracy); model/estimate uses data/collate's rule for which logits SFT
  keeps. The one rule inside a layer is DESIGN's "data/ never imports model/" (data receives a tokenizer).
- jobs/ sits with the workflows but needs none of them: it reads run folders through utils/run_folder.py, the one
  module that names a run folder's files, which sits in base so every layer (train writes, jobs / chat / evaluate /
  export / webui read) can ask it.
- sweep/ drives jobs/ (its trials are train jobs) and reads config/; train/sweep_report.py (the pruning callback)
  reads sweep/study.py to find its trial, so sweep/ never imports train/.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tuneforge.config.stages import RECORDS

SRC = Path(__file__).resolve().parents[2] / "src"
LAYERS = {  # top-level name under tuneforge -> rank (higher = further up)
    "cli": 4,
    "__main__": 4,
    "webui": 4,
    "api": 4,
    "warm": 4,
    "train": 3,
    "chat": 3,
    "export": 3,
    "evaluate": 3,
    "jobs": 3,
    "sweep": 3,
    "data": 2,
    "model": 2,
    "config": 1,
    "errors": 0,
    "utils": 0,
    "": 0,  # the package root
}
LAYER_NAMES = {4: "faces", 3: "workflows", 2: "blocks", 1: "schema", 0: "base"}
FORBIDDEN = {("data", "model"): "data/ never imports model/ (it receives a tokenizer)"}
HEAVY = ("torch", "transformers", "gradio", "datasets", "trl", "peft", "deepspeed", "bitsandbytes", "accelerate")
WEB = ("fastapi", "starlette", "pydantic", "uvicorn")
# Modules that load a heavy library when imported, and so are imported late (inside the function that needs them)
# or only by each other. The stage recipes, what only they import and PPO's torch maths: train/run.py imports a
# recipe by name when a run of that stage starts. The API: fastapi / pydantic models, which only `tuneforge api`
# needs (cli.py imports it inside `cmd_api`).
RECIPE_MODULES = {
    *(record.recipe for record in RECORDS),  # the stage records (config/stages.py)
    "tuneforge.train.common",
    "tuneforge.train.callbacks",
    "tuneforge.train.methods",
    "tuneforge.train.profiler",  # torch profiler callbacks: only train/common.py imports it
    "tuneforge.train.apollo_front",  # a TrainerCallback: only train/common.py imports it
    "tuneforge.train.sweep_report",  # a sweep trial's pruning callback: only train/common.py imports it
    "tuneforge.train.muon",  # subclasses torch's Optimizer: train/optim.py imports it when use_muon builds one
    "tuneforge.train.ppo_core",
}
API_MODULES = {"tuneforge.api.app", "tuneforge.api.chat", "tuneforge.api.protocol", "tuneforge.api.server"}
HEAVY_MODULES = RECIPE_MODULES | API_MODULES
# Not heavy, but imported late on purpose: the entry (__main__) loads the command line (~0.5 s of our modules) only
# after a train run has re-executed itself on its allocator (utils/allocator.py)
ENTRY_MODULES = {"tuneforge.cli"}


@dataclass(frozen=True)
class Edge:
    source: str  # importing module
    target: str  # imported module
    file: str
    line: int
    where: str  # "module", "TYPE_CHECKING" or "function"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.source} -> {self.target} ({self.where}-level)"


def module_names(root: Path, package: str = "tuneforge") -> dict[str, Path]:
    """Dotted name -> file, for every module of the package under `root`."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_edges(root: Path, package: str = "tuneforge") -> list[Edge]:
    """Every import of one of the package's modules by another, with where it sits."""
    modules = module_names(root, package)
    edges = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = str(path.relative_to(root.parent if root.name == "src" else root))

        def visit(node, where: str, name=name, is_package=is_package, rel=rel):
            for child in ast.iter_child_nodes(node):
                inner = where
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    inner = "function"
                elif isinstance(child, ast.If) and where == "module" and "TYPE_CHECKING" in ast.unparse(child.test):
                    inner = "TYPE_CHECKING"
                for target in _targets(child, name, is_package, modules, package):
                    if target != name:
                        edges.append(Edge(name, target, rel, child.lineno, where))
                visit(child, inner)

        visit(tree, "module")
    return edges


def _targets(node, name: str, is_package: bool, modules: dict, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        found = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = name.split(".") if is_package else name.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        found = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names]
    else:
        return []
    return [m for m in dict.fromkeys(found) if m == package or m.startswith(package + ".")]


def find_cycles(edges: list[Edge]) -> list[list[Edge]]:
    """One cycle (as its edges, in order) per strongly connected group of modules (Tarjan)."""
    graph: dict[str, list[Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.source, []).append(edge)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for e in graph.get(v, []):
            if e.target not in index:
                strongconnect(e.target)
                low[v] = min(low[v], low[e.target])
            elif e.target in on_stack:
                low[v] = min(low[v], index[e.target])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return [_cycle_in(group, graph) for group in groups]


def _cycle_in(group: set[str], graph: dict[str, list[Edge]]) -> list[Edge]:
    """A closed path through the group, found by breadth-first search back to its first module."""
    start = min(group)
    paths: dict[str, list[Edge]] = {start: []}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for e in graph.get(v, []):
            if e.target == start:
                return paths[v] + [e]
            if e.target in group and e.target not in paths:
                paths[e.target] = paths[v] + [e]
                queue.append(e.target)
    raise AssertionError(f"no cycle through {start}")  # cannot happen in a strongly connected group


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def upward_imports(edges: list[Edge]) -> list[tuple[Edge, str]]:
    """Edges that import a higher layer, or break a rule inside a layer; each with why."""
    bad = []
    for e in edges:
        src, dst = _area(e.source), _area(e.target)
        if LAYERS[dst] > LAYERS[src]:
            why = f"{LAYER_NAMES[LAYERS[src]]} ({src or 'tuneforge'}) imports {LAYER_NAMES[LAYERS[dst]]} ({dst})"
            bad.append((e, why))
        elif (src, dst) in FORBIDDEN:
            bad.append((e, FORBIDDEN[src, dst]))
    return bad


def format_cycles(cycles: list[list[Edge]]) -> str:
    return "\n".join("cycle:\n  " + "\n  ".join(str(e) for e in cycle) for cycle in cycles)


# ---- the package ---------------------------------------------------------------------------------------------


def test_every_area_has_a_layer():
    areas = {_area(m) for m in module_names(SRC)}
    assert areas <= set(LAYERS), f"add these to LAYERS (and to the docstring): {sorted(areas - set(LAYERS))}"


def test_no_import_cycle():
    cycles = find_cycles(import_edges(SRC))
    assert not cycles, "import cycles (move the shared helper into a module both can import):\n" + format_cycles(cycles)


def test_no_upward_import():
    bad = upward_imports(import_edges(SRC))
    assert not bad, "imports that go up a layer (shared/DESIGN.md):\n" + "\n".join(f"{e}: {why}" for e, why in bad)


def test_our_modules_are_imported_at_the_top():
    """Function-level imports are for heavy third-party packages; TuneForge's own modules load at the top, except
    the few that load a heavy library themselves (HEAVY_MODULES) and the command line under its entry."""
    late = [e for e in import_edges(SRC) if e.where == "function" and e.target not in HEAVY_MODULES | ENTRY_MODULES]
    assert not late, "import these at the top of the file:\n" + "\n".join(str(e) for e in late)


def _run(code: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=SRC.parent, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


PROBE = f"""
import contextlib, io, json, sys
HEAVY = {HEAVY!r}
loaded = {{}}
def note(step):
    loaded[step] = sorted(m for m in HEAVY if m in sys.modules)
import tuneforge.cli
note("import tuneforge.cli")
for argv in (["--help"], ["train", "--help"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        tuneforge.cli.main(argv)
    note("tuneforge " + " ".join(argv))
print(json.dumps(loaded))
"""


def test_cli_and_help_import_no_heavy_library():
    """`tuneforge --help` is instant: importing the CLI or printing help loads no torch, transformers, gradio."""
    loaded = _run(PROBE)
    assert set(loaded) == {"import tuneforge.cli", "tuneforge --help", "tuneforge train --help"}
    assert loaded == {step: [] for step in loaded}, loaded


def test_only_the_heavy_modules_load_heavy_libraries_when_imported():
    """Any other module can be imported at the top of another without loading torch, gradio, fastapi & co., so a
    face imports the workflows it dispatches to at its top and still starts instantly."""
    names = sorted(set(module_names(SRC)) - HEAVY_MODULES)
    code = (
        f"import importlib, json, sys\nfor n in {names!r}:\n    importlib.import_module(n)\n"
        f"print(json.dumps(sorted(m for m in {HEAVY + WEB!r} if m in sys.modules)))"
    )
    assert _run(code) == []


def statically_heavy(root: Path) -> set[str]:
    """Modules whose import loads a HEAVY or WEB library: they import one at module level (outside TYPE_CHECKING),
    or import such a module (or a package whose __init__ does)."""
    modules = module_names(root)
    edges = import_edges(root)  # once: parsing the whole tree per module made this test take minutes
    heavy, uses = set(), {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        deps = {e.target for e in edges if e.source == name and e.where == "module"}
        deps |= {name.rsplit(".", i)[0] for i in range(1, name.count("."))}  # parent packages run first
        uses[name] = deps
        for node in tree.body:
            roots = []
            if isinstance(node, ast.Import):
                roots = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                roots = [node.module.split(".")[0]]
            if set(roots) & set(HEAVY + WEB):
                heavy.add(name)
    while True:
        more = {n for n, deps in uses.items() if n not in heavy and deps & heavy}
        if not more:
            return heavy
        heavy |= more


def test_the_heavy_list_is_the_heavy_modules():
    """HEAVY_MODULES names exactly the modules that load a heavy library when imported (read from the source)."""
    assert statically_heavy(SRC) == HEAVY_MODULES


# ---- the checker itself, on a tiny synthetic package ---------------------------------------------------------


@pytest.fixture
def tangled(tmp_path) -> Path:
    """tuneforge.data.a -> data.b (top) -> data.a (in a function): a cycle; data.c -> train.x: upward;
    data.d -> model.m: data imports model; a relative import that closes nothing."""
    files = {
        "tuneforge/__init__.py": "",
        "tuneforge/data/__init__.py": "",
        "tuneforge/data/a.py": "from tuneforge.data import b\n",
        "tuneforge/data/b.py": "def f():\n    from tuneforge.data.a import thing\n",
        "tuneforge/data/c.py": "import os\n\nfrom tuneforge.train.x import run\n",
        "tuneforge/data/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..model.m import M\n",
        "tuneforge/data/e.py": "from . import b\n",
        "tuneforge/model/__init__.py": "",
        "tuneforge/model/m.py": "from tuneforge.config import load\n",
        "tuneforge/train/__init__.py": "",
        "tuneforge/train/x.py": "from tuneforge.data.a import thing\n",
        "tuneforge/config/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_the_checker_finds_a_cycle_through_a_function_level_import(tangled):
    cycles = find_cycles(import_edges(tangled))
    assert len(cycles) == 1
    (cycle,) = cycles
    assert [(e.source, e.target, e.where) for e in cycle] == [
        ("tuneforge.data.a", "tuneforge.data.b", "module"),
        ("tuneforge.data.b", "tuneforge.data.a", "function"),
    ]
    assert "tuneforge/data/b.py:2: tuneforge.data.b -> tuneforge.data.a (function-level)" in format_cycles(cycles)


def test_the_checker_finds_upward_and_forbidden_imports(tangled):
    bad = {str(e): why for e, why in upward_imports(import_edges(tangled))}
    assert bad == {
        "tuneforge/data/c.py:3: tuneforge.data.c -> tuneforge.train.x (module-level)": (
            "blocks (data) imports workflows (train)"
        ),
        "tuneforge/data/d.py:3: tuneforge.data.d -> tuneforge.model.m (TYPE_CHECKING-level)": FORBIDDEN[
            ("data", "model")
        ],
    }


def test_the_checker_resolves_relative_and_package_imports(tangled):
    edges = {(e.source, e.target) for e in import_edges(tangled)}
    assert ("tuneforge.data.e", "tuneforge.data.b") in edges  # `from . import b`: the module
    assert ("tuneforge.model.m", "tuneforge.config") in edges  # a name from a package: its __init__
    assert not [e for e in edges if e[0] == e[1]]
