"""The harness's run lines as a Markdown table (docs/benchmarks.md).

    python benchmarks/table.py RESULTS.jsonl [...] [--reestimate WORK]

Per model x row: medians of the uncontended runs (of all runs where every one was contended) for wall-clock
tokens/s, samples/s, first step and peak RSS; the median over all runs of tokens per CPU-second of the run's own
threads (contention makes a run wait, not work more: `tokens_per_cpu_s`, or tokens/s / (1 - runqueue wait share)
for lines written before the harness recorded it); ratios to the baseline row of the same model and stage
(dpo: dpo_baseline).
`--reestimate WORK`: predictions from the current `tuneforge estimate`, read from the configs the harness left in
its work folder (WORK/<model>-<row>.yaml), next to the peaks measured in the run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import BASELINE_OF, flops_per_token  # noqa: E402  (the plain-library row each row is compared with)

COLUMNS = (
    "model", "row", "real tokens/s", "per CPU-s", "vs baseline (CPU-s)", "samples/s", "first step (s)",
    "peak RSS (MiB)", "RSS vs baseline", "predicted (MiB)", "error", "MFU", "uncontended runs",
)  # fmt: skip


def predicted(work: Path, model: str, row: str) -> float:
    from tuneforge.config import load_config
    from tuneforge.model.estimate import estimate_memory

    return estimate_memory(load_config(str(work / f"{model}-{row}.yaml")), cuda=False)["total"]


def mfu(work: Path, model: str, row: str, tokens_per_s: float, peak_gflops: float) -> float:
    from tuneforge.config import load_config
    from tuneforge.model.estimate import estimate_memory

    cfg = load_config(str(work / f"{model}-{row}.yaml"))
    trainable = estimate_memory(cfg, cuda=False)["trainable_params"]
    return tokens_per_s * flops_per_token(work / f"model-{model}", row, trainable) / (peak_gflops * 1e9)


def per_cpu_second(run: dict) -> float:
    if "tokens_per_cpu_s" in run:
        return run["tokens_per_cpu_s"]
    return run["tokens_per_s"] / max(1 - run["runqueue_wait_share"], 1e-3)


def rows_of(files: list[str]) -> dict[tuple[str, str], dict]:
    groups: dict[tuple[str, str], list[dict]] = {}
    every = [[json.loads(raw) for raw in Path(file).read_text().splitlines()] for file in files]
    best = max(r.get("best", 0.0) for lines in every for r in lines)  # MFU against the best peak measured
    for lines in every:
        for run in lines:
            if "matmul_peak_gflops" in run and "row" in run:
                run["mfu"] = run["mfu"] * run["matmul_peak_gflops"] / best
            if "row" in run and not run.get("summary"):
                run["best"] = best
                groups.setdefault((run["model"], run["row"]), []).append(run)
    out = {}
    for key, runs in groups.items():
        clean = [r for r in runs if not r["contended"]]
        use = clean or runs
        med = lambda k, rs=use: statistics.median(r[k] for r in rs)  # noqa: E731
        out[key] = {
            "tokens_per_s": med("tokens_per_s"),
            "per_cpu_s": statistics.median(per_cpu_second(r) for r in runs),
            "samples_per_s": med("samples_per_s"),
            "first_step_s": med("first_step_s"),
            "peak": med("peak_rss_mib"),
            "predicted": med("predicted_mib"),
            "mfu": med("mfu"),
            "used": f"{len(clean)}/{len(runs)}",
            "best": runs[0]["best"],
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+")
    parser.add_argument("--reestimate", help="the harness's --work folder")
    opts = parser.parse_args(argv)
    rows = rows_of(opts.results)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for (model, row), s in rows.items():
        base = rows.get((model, BASELINE_OF.get(row, "baseline")), s)
        pred = predicted(Path(opts.reestimate), model, row) if opts.reestimate else s["predicted"]
        if opts.reestimate:  # MFU with the harness's current FLOPs count
            s["mfu"] = mfu(Path(opts.reestimate), model, row, s["tokens_per_s"], s["best"])
        cells = (
            model, row, f"{s['tokens_per_s']:,.0f}", f"{s['per_cpu_s']:,.0f}",
            f"{s['per_cpu_s'] / base['per_cpu_s']:.2f}×", f"{s['samples_per_s']:.2f}", f"{s['first_step_s']:.1f}",
            f"{s['peak']:,.0f}", f"{s['peak'] / base['peak']:.2f}×", f"{pred:,.0f}", f"{pred / s['peak'] - 1:+.0%}",
            f"{s['mfu']:.3f}", s["used"],
        )  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
