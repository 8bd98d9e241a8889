"""Times any `transformers.Trainer` run from its command line: `tuneforge train` and `llamafactory-cli train` alike.

benchmarks/vs_llamafactory.py puts this folder on PYTHONPATH (so Python imports this file at start-up) with
BENCH_MARKS_FILE and BENCH_T_LAUNCH set. Nothing is imported until the tool itself imports `transformers.trainer`;
then bench_worker's Timer callback joins its DEFAULT_CALLBACKS (train begin, first step end, train end, run-queue
wait, precision: the same marks the in-process harness rows take), and at exit the marks go to BENCH_MARKS_FILE
as one JSON object. In a warm worker (`tuneforge warm start`, vs_llamafactory.py --warm) the hook is installed
once, at the worker's import; each forked run reads BENCH_MARKS_FILE and BENCH_T_LAUNCH from its caller's
environment, which the child adopts. A callback cannot be passed to either tool, hence the import hook.
"""

import atexit
import importlib.abc
import importlib.util
import json
import os
import resource
import sys
from pathlib import Path

TARGET = "transformers.trainer"


def _load_worker():
    path = Path(__file__).resolve().parent.parent / "bench_worker.py"
    spec = importlib.util.spec_from_file_location("bench_worker", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _install(out: str, t_launch: float) -> None:
    worker = _load_worker()
    worker.T0 = t_launch
    marks = worker.install_timer()

    def write() -> None:
        out_now = os.environ.get("BENCH_MARKS_FILE", out)  # a warm worker's child: its caller's file
        if "train_begin" not in marks and Path(out_now).exists():
            return  # a helper process (a spawned worker) that trained nothing: the run's marks stay
        torch = sys.modules.get("torch")
        marks["threads"] = torch.get_num_threads() if torch else None
        marks["peak_rss_self_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        Path(out_now).write_text(json.dumps(marks), encoding="utf-8")

    atexit.register(write)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds `transformers.trainer` through the other finders and runs `_install` once it has executed."""

    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        exec_module = spec.loader.exec_module

        def exec_then_install(module):
            exec_module(module)
            _install(os.environ["BENCH_MARKS_FILE"], float(os.environ["BENCH_T_LAUNCH"]))

        spec.loader.exec_module = exec_then_install
        return spec


if os.environ.get("BENCH_MARKS_FILE") and os.environ.get("BENCH_T_LAUNCH"):
    sys.meta_path.insert(0, _AfterImport())
