"""TuneForge against LLaMA-Factory 0.9.5: the same LF-format YAML through both command lines. One JSON line per run.

    python benchmarks/llamafactory_venv.py            # once: LF in .venv-llamafactory/
    OMP_NUM_THREADS=1 python benchmarks/vs_llamafactory.py [--models tiny 100m] [--rows lora full ...] [--repeats 3]

Rows: sft x {lora, full, freeze, qlora} and dpo (LoRA); on request lora_gc / full_gc / dpo_gc and lora_no_gc /
dpo_no_gc: the same with gradient checkpointing on, or off, in both tools (LF turns it on by default, ours decides
by memory). Each row writes ONE config in LLaMA-Factory's format (model_name_or_path = the generated model, the
dataset registered in a dataset_info.json both tools read, template qwen, cutoff_len, batch, epochs 1, the same
seed and lr, logging_steps 1, save_strategy no, report_to none) that our loader accepts too, and runs it as
`llamafactory-cli train CFG` (LF's venv) and `tuneforge train CFG` (ours), alternating tools within each row and
rows within each repeat, each run its own process with OMP_NUM_THREADS=1, FORCE_TORCHRUN unset (LF then trains
in-process). Both are measured the same way: benchmarks/step_timer/ is put on PYTHONPATH, whose sitecustomize
adds bench_worker's Timer callback to any Trainer (train begin / end, end of the first optimizer step counted
from the launch of the command, run-queue wait); real (non-padding) tokens/s over the epoch as the in-process
harness counts them; peak RSS of the process tree (psutil, every 0.1 s, and wait4's max RSS). A run that fails
keeps its last error line (`error`): LF's refusal of a row is a result. Summary lines per model x row: medians of
the uncontended runs per tool and the ratios TuneForge / LF, with issue 19's targets (`--summarise A.jsonl
B.jsonl` prints them for the run lines of earlier runs, e.g. tiny and 100m run apart).

`--warm` adds a third tool, tuneforge_warm: the same `tuneforge train CFG` handed to a warm worker (`tuneforge warm
start`, started once before the runs with the runs' environment; the cold `tuneforge` runs set TUNEFORGE_WARM=0).
Its first step counts from the launch of `tuneforge train` as the others do; its peak RSS is the forked child's own
(wait4 cannot see it: the child is the worker's), which does not count the worker's pages the child never touched.

`--baseline-src DIR` adds tuneforge_base: the same `python -m tuneforge train CFG`, cold, with DIR/src first on
PYTHONPATH (DIR: another checkout, e.g. `git worktree add /tmp/tf-base <commit>`), so a change is measured against
the code before it in the same interleaved run; its summary line is tuneforge_base/llamafactory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

# The environment the runs start from, as this script found it: preparing the rows imports our loader, which sets
# library switches (TOKENIZERS_PARALLELISM, ...) in this process. A run, and the warm worker it must match, gets none.
LAUNCH_ENV = dict(os.environ)
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_data import build_model, real_tokens, write_dataset  # noqa: E402
from harness import row_config, run_child, run_record, summarise  # noqa: E402
from machine import cpu_pressure  # noqa: E402

from tuneforge.config import load_config  # noqa: E402
from tuneforge.model.estimate import estimate_memory  # noqa: E402

ROWS = ("lora", "full", "freeze", "qlora", "dpo", "lora_gc", "full_gc", "dpo_gc", "lora_no_gc", "dpo_no_gc")
DEFAULT_ROWS = ROWS[:5]
# LF turns gradient checkpointing on for every training run (its `disable_gradient_checkpointing: false`); ours
# decides by memory (`gradient_checkpointing: auto`: off when the run fits). The *_gc rows switch it on in the shared
# config (transformers' `gradient_checkpointing: true`, which LF reads as a TrainingArguments field), the *_no_gc
# rows off (LF's key, which ours reads too): the same setting in both tools.
VARIANTS = {
    **{f"{row}_gc": (row, {"gradient_checkpointing": True}) for row in ("lora", "full", "dpo")},
    "lora_no_gc": ("lora", {"disable_gradient_checkpointing": True}),
    "dpo_no_gc": ("dpo", {"disable_gradient_checkpointing": True}),
}
TOOLS = ("llamafactory", "tuneforge")
WARM = "tuneforge_warm"
BASE = "tuneforge_base"
# issue 19's targets for TuneForge / LF: (tokens/s at least, peak RSS at most); first step at most FIRST_STEP_MAX
TARGETS = {"lora": (2.5, 0.8), "full": (2.0, 0.8), "freeze": (2.0, 0.8), "dpo": (2.0, 0.8)}
FIRST_STEP_MAX = 0.5
# Keys both tools read the same way, set so that neither tool's defaults decide (LF's: linear schedule, alpha 2r)
SHARED_KEYS = {
    "do_train": True,
    "template": "qwen",  # ChatML in both tools; the generated tokenizer has its markers as single tokens
    "logging_steps": 1,
    "save_strategy": "no",
    "report_to": "none",
    "overwrite_cache": True,  # both tokenize on every run: no run reuses another's cache
    "lr_scheduler_type": "cosine",
}
LORA_KEYS = {"lora_target": "all", "lora_dropout": 0.0}
DPO_KEYS = {"pref_beta": 0.1, "pref_loss": "sigmoid"}
NOT_LF_KEYS = ("overwrite_output_dir", "save_steps", "disable_tqdm")  # ours or transformers 4's: LF refuses them


def lf_config(row: str, model_dir: Path, data_dir: Path, out: Path, opts) -> dict:
    """The row's config in LLaMA-Factory's format, valid for our loader as well."""
    row, variant = VARIANTS.get(row, (row, {}))
    cfg = row_config(row, model_dir, data_dir, out, opts)
    for key in NOT_LF_KEYS:
        cfg.pop(key, None)
    cfg.update(SHARED_KEYS)
    cfg["gradient_accumulation_steps"] = opts.grad_accum
    if cfg["finetuning_type"] == "lora":
        cfg.update(LORA_KEYS, lora_alpha=2 * opts.lora_rank)
    if row == "dpo":
        cfg.update(DPO_KEYS)
    return {**cfg, **variant}


def commands(opts) -> dict[str, list[str]]:
    tuneforge = str(Path(sys.executable).parent / "tuneforge")
    return {
        "llamafactory": [str(Path(opts.lf_venv) / "bin" / "llamafactory-cli"), "train"],
        "tuneforge": [tuneforge, "train"],
        WARM: [tuneforge, "train"],  # the same command: a listening worker takes it
        BASE: [sys.executable, "-m", "tuneforge", "train"],  # the baseline's sources come first on PYTHONPATH
    }


def run_env(marks_file: Path, tool: str = WARM, baseline_src: str | None = None) -> dict:
    env = {k: v for k, v in LAUNCH_ENV.items() if k not in ("FORCE_TORCHRUN", "PYTHONPATH", "TUNEFORGE_WARM")}
    if tool in ("tuneforge", BASE):
        env["TUNEFORGE_WARM"] = "0"  # cold, whether or not a worker listens
    paths = [str(HERE / "step_timer")]
    if tool == BASE:
        paths.append(str(Path(baseline_src, "src").resolve()))
    env.update(
        PYTHONPATH=os.pathsep.join(paths),
        BENCH_MARKS_FILE=str(marks_file),
        BENCH_T_LAUNCH=repr(time.time()),
        OMP_NUM_THREADS=LAUNCH_ENV.get("OMP_NUM_THREADS", "1"),
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    return env


def tree_rss_mib(proc) -> float:
    """Resident memory of a process and all its descendants now (MiB)."""
    import psutil

    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 2**20


def launch(cmd: list[str], marks_file: Path, timeout: float, log: Path, tool: str, baseline_src=None) -> dict:
    """Runs one command line; returns the Timer's marks with the tree's peak RSS, or `error` (its last error line)."""
    import psutil

    marks_file.unlink(missing_ok=True)
    env = run_env(marks_file, tool, baseline_src)
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
    watched, peak, deadline, status, usage = psutil.Process(proc.pid), 0.0, time.time() + timeout, None, None
    while status is None:
        with contextlib.suppress(psutil.Error):
            peak = max(peak, tree_rss_mib(watched))
        pid, code, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status, usage = os.waitstatus_to_exitcode(code), ru
        elif time.time() > deadline:
            proc.kill()
            status, usage = "timeout", os.wait4(proc.pid, 0)[2]
        else:
            time.sleep(0.1)
    proc.returncode = status if isinstance(status, int) else -9
    marks = json.loads(marks_file.read_text()) if marks_file.is_file() else {}
    if status != 0 or "train_end" not in marks:
        return {"error": f"exit {status}: {last_error(log.read_text(errors='replace'))}"}
    # wait4's ru_maxrss: the largest single process of the tree (maximum, not sum); the poll: the sum, sampled; the
    # training process's own (a warm worker's child, outside the tree)
    own = marks.get("peak_rss_self_mib") or 0
    return {**marks, "peak_rss_mib": max(peak, usage.ru_maxrss / 1024, own), "peak_rss_polled_mib": peak}


def last_error(output: str) -> str:
    """The line that says why a run stopped: the last `...Error: ...` line, else the last line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln.split(":", 1)[0] or ln.startswith("error")]
    return (errors or lines or ["no output"])[-1][:400]


def measure(row: str, tool: str, model_name: str, model_dir: Path, work: Path, opts, ctx: dict) -> dict:
    cfg_file = work / f"{model_name}-{row}.yaml"
    shutil.rmtree(work / f"out-{model_name}-{row}", ignore_errors=True)  # the config's output_dir: both tools'
    before = cpu_pressure()
    log = work / f"{model_name}-{row}-{tool}.log"  # the last run's output of each model x row x tool
    cmd = [*commands(opts)[tool], str(cfg_file)]
    res = launch(cmd, work / "marks.json", opts.timeout, log, tool, opts.baseline_src)
    pressure = [before, cpu_pressure()]
    if "error" in res:
        return {"model": model_name, "row": row, "tool": tool, "error": res["error"], "cpu_pressure": pressure}
    record = run_record(res, model_name, row, model_dir, ctx["estimates"][row], ctx, pressure, opts.max_wait)
    extra = {  # RSS when training starts (imports, model, data: before any step) and the tree's polled peak
        "rss_at_train_begin_mib": round(res.get("rss_at_train_begin_mib") or 0, 1),
        "peak_rss_polled_mib": round(res["peak_rss_polled_mib"], 1),
    }
    return {"model": model_name, "row": row, "tool": tool, **record, **extra}


def ratios(tf: dict, lf: dict, row: str) -> dict:
    """TuneForge / LF on the medians, and which of issue 19's targets hold."""
    out = {
        "tokens_per_s_vs_lf": round(tf["tokens_per_s"] / lf["tokens_per_s"], 2),
        "tokens_per_cpu_s_vs_lf": round(tf["tokens_per_cpu_s"] / lf["tokens_per_cpu_s"], 2),
        "peak_rss_vs_lf": round(tf["peak_rss_mib"] / lf["peak_rss_mib"], 2),
        "first_step_vs_lf": round(tf["first_step_s"] / lf["first_step_s"], 2),
    }
    target = TARGETS.get(row) or TARGETS.get(VARIANTS.get(row, ("",))[0])  # a variant: its row's targets
    if target:
        speed, memory = target
        out["targets"] = {
            f"tokens_per_s >= {speed}x": out["tokens_per_s_vs_lf"] >= speed,
            f"peak_rss <= {memory}x": out["peak_rss_vs_lf"] <= memory,
            f"first_step <= {FIRST_STEP_MAX}x": out["first_step_vs_lf"] <= FIRST_STEP_MAX,
        }
    return out


def summary_lines(runs: list[dict], peak_gflops: float) -> list[dict]:
    """Per model x row x tool: the harness's medians; per model x row: the ratios, or what failed."""
    done = [{**r, "row": f"{r['row']}/{r['tool']}"} for r in runs if "error" not in r]
    medians = {}
    for s in summarise(done, peak_gflops):
        row, tool = s["row"].split("/")
        medians[(s["model"], row, tool)] = {**s, "row": row, "tool": tool}
    out = list(medians.values())
    for model, row in dict.fromkeys((r["model"], r["row"]) for r in runs):
        for ours in ("tuneforge", WARM, BASE):
            if not any(r["tool"] == ours for r in runs if (r["model"], r["row"]) == (model, row)):
                continue
            tf, lf = medians.get((model, row, ours)), medians.get((model, row, "llamafactory"))
            line = {"summary": True, "model": model, "row": row, "tool": f"{ours}/llamafactory"}
            if tf and lf:
                out.append({**line, **ratios(tf, lf, row)})
                continue
            errors = {r["tool"]: r["error"] for r in runs if (r["model"], r["row"]) == (model, row) and "error" in r}
            out.append({**line, "failed": errors})
    return out


@contextlib.contextmanager
def warm_worker(opts, work: Path):
    """`tuneforge warm start` in the runs' environment (so their `tuneforge train` finds it), stopped at the end."""
    tuneforge = commands(opts)["tuneforge"][0]
    env = run_env(work / "marks.json")
    subprocess.run([tuneforge, "warm", "start", "--idle-minutes", "120"], env=env, check=True, stdout=sys.stderr)
    try:
        yield
    finally:
        subprocess.run([tuneforge, "warm", "stop"], env=env, check=False, stdout=sys.stderr)


def prepare(model_name: str, work: Path, opts) -> tuple[Path, dict]:
    """The model, the data (dataset_info.json for both tools), one config per row, the token counts."""
    from transformers import AutoTokenizer

    model_dir = build_model(model_name, work)
    samples = opts.samples_100m if model_name == "100m" else opts.samples
    data_dir = work / f"data-{model_name}"
    rows = write_dataset(data_dir, samples)
    estimates = {}
    for row in opts.rows:
        cfg_file = work / f"{model_name}-{row}.yaml"
        cfg = lf_config(row, model_dir, data_dir, work / f"out-{model_name}-{row}", opts)
        cfg_file.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
        estimates[row] = estimate_memory(load_config(str(cfg_file)))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ctx = {"tokens": real_tokens(tokenizer, rows, opts.cutoff_len), "samples": samples, "estimates": estimates}
    return model_dir, ctx


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "100m"], choices=["tiny", "100m"])
    parser.add_argument("--rows", nargs="+", default=list(DEFAULT_ROWS), choices=ROWS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=96, help="dataset size (8%% long samples)")
    parser.add_argument("--samples-100m", type=int, default=96)
    parser.add_argument("--cutoff-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument(
        "--max-wait", type=float, default=0.1, help="run-queue wait share above which a run is contended"
    )
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--lf-venv", default=str(ROOT / ".venv-llamafactory"))
    parser.add_argument("--work", help="folder for models, data, configs and logs (default: a temporary folder)")
    parser.add_argument("--summarise", nargs="+", metavar="JSONL", help="only the summary of earlier runs' lines")
    parser.add_argument("--warm", action="store_true", help="also run ours through a warm worker (tuneforge_warm)")
    parser.add_argument("--baseline-src", metavar="DIR", help="also run another checkout's code (tuneforge_base)")
    opts = parser.parse_args(argv)
    if opts.summarise:
        lines = [json.loads(ln) for f in opts.summarise for ln in Path(f).read_text().splitlines() if ln.strip()]
        runs = [r for r in lines if "tool" in r and not r.get("summary")]
        for line in summary_lines(runs, max(r.get("best", 0.0) for r in lines)):
            print(json.dumps(line))
        return 0
    opts.extra = {}  # harness.row_config's --set: none here, the YAML must stay valid for both tools
    if not (Path(opts.lf_venv) / "bin" / "llamafactory-cli").is_file():
        sys.exit(f"no llamafactory-cli in {opts.lf_venv}: run benchmarks/llamafactory_venv.py first")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    out = sys.stdout
    tools = (*TOOLS, WARM) if opts.warm else TOOLS
    if opts.baseline_src:
        if not (Path(opts.baseline_src) / "src" / "tuneforge" / "__main__.py").is_file():
            sys.exit(f"no src/tuneforge in {opts.baseline_src}: give a checkout of TuneForge")
        tools = (*tools, BASE)
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        work = Path(opts.work or stack.enter_context(tempfile.TemporaryDirectory())).resolve()
        work.mkdir(parents=True, exist_ok=True)
        if opts.warm:
            stack.enter_context(warm_worker(opts, work))
        best = run_child({"kind": "peak", "row": "peak"}, opts.timeout)["gflops"]
        print(json.dumps({"matmul_peak_gflops": round(best, 1), "best": round(best, 1)}), file=out, flush=True)
        runs = []
        for model_name in opts.models:
            model_dir, ctx = prepare(model_name, work, opts)
            ctx["peak_gflops"] = best
            for repeat in range(opts.repeats):
                for row in opts.rows:
                    order = tools if repeat % 2 == 0 else tools[::-1]  # neither tool always runs first
                    for tool in order:
                        record = measure(row, tool, model_name, model_dir, work, opts, ctx)
                        runs.append(record)
                        print(json.dumps(record), file=out, flush=True)
        for line in summary_lines(runs, best):
            print(json.dumps(line), file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
