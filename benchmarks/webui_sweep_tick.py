"""What the Sweep tab's 2-second timer costs the Web UI server, per open page: a stored study of N trials (made with
Optuna directly, as the driver stores them), then the tab's `watch` timed when nothing changed (the figures are
kept: gr.skip()) and when a trial changed (both matplotlib figures drawn and encoded as gr.Plot sends them, webp).
One JSON line per study size.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/webui_sweep_tick.py --trials 6 50 200

Each line: `trials`; `read_study_ms` (Optuna reading the stored trials, `trial_rows`: the tab does it only when
the study's files changed); `unchanged_ms` / `redraw_ms` (a tick, median of `--repeat` calls); `encode_ms` (the two
figures saved as webp, as gradio sends a matplotlib figure); `spec_load_ms` (the first tick's sweep.yaml check,
cached after); `cpu_pressure` (some avg10 of /proc/pressure/cpu at the end: above ~10 the numbers are contended).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_pressure

from tuneforge.sweep import folder
from tuneforge.sweep.results import trial_rows
from tuneforge.webui.context import UIContext
from tuneforge.webui.tabs import sweep as sweep_tab

BASE = {"model_name_or_path": "Qwen/Qwen2.5-0.5B", "dataset": "toy", "template": "qwen", "output_dir": "x"}
SPEC = {
    "metric": "train_loss",
    "n_trials": 0,
    "pruner": "median",
    "params": {"learning_rate": {"low": 1e-5, "high": 1e-2, "log": True}, "lora_rank": {"choices": [4, 8, 16]}},
}


def make_sweep(root: Path, trials: int) -> Path:
    """A sweep folder whose study holds `trials` finished trials (every fourth pruned) with 20 reports each."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sweep_dir = root / f"sweep_{trials}"
    folder.write_inputs(sweep_dir, BASE, {**SPEC, "n_trials": trials})
    study = optuna.create_study(study_name=folder.STUDY_NAME, storage=folder.storage_url(sweep_dir))
    for n in range(trials):
        trial = study.ask()
        lr = trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True)
        trial.suggest_categorical("lora_rank", [4, 8, 16])
        for step in range(20):
            trial.report(2.0 + lr * 100 - step * 0.01, step)
        state = optuna.trial.TrialState.PRUNED if n % 4 == 3 else optuna.trial.TrialState.COMPLETE
        study.tell(trial, None if state == optuna.trial.TrialState.PRUNED else 1.0 + lr * 100, state=state)
    return sweep_dir


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[6, 50, 200])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ui = UIContext(saves_dir=root / "saves", data_dir="data", cwd=root)
        for trials in args.trials:
            sweep_dir = make_sweep(root, trials)
            job = ui.store.add("sweep", sweep_dir, sweep_dir / folder.SPEC_FILE, sweep_dir / folder.LOG_FILE, root)
            start = time.perf_counter()
            sweep_tab.sweep_spec(job)
            spec_ms = (time.perf_counter() - start) * 1000
            *_, metric_fig, params_fig, key = sweep_tab.watch(ui, job.id, "en", None)

            def encode(metric_fig=metric_fig, params_fig=params_fig):
                for fig in (metric_fig, params_fig):
                    fig.savefig(io.BytesIO(), format="webp")

            line = {
                "bench": "webui_sweep_tick",
                "trials": trials,
                "read_study_ms": round(timed(lambda sweep_dir=sweep_dir: trial_rows(sweep_dir), args.repeat), 2),
                "unchanged_ms": round(
                    timed(lambda job=job, key=key: sweep_tab.watch(ui, job.id, "en", key), args.repeat), 2
                ),
                "redraw_ms": round(timed(lambda job=job: sweep_tab.watch(ui, job.id, "en", None), args.repeat), 2),
                "encode_ms": round(timed(encode, args.repeat), 2),
                "spec_load_ms": round(spec_ms, 1),
                "cpu_pressure": cpu_pressure(),
            }
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
