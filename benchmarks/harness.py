"""Training speed and memory, TuneForge against plain transformers Trainer + peft. One JSON line per run.

    OMP_NUM_THREADS=1 python benchmarks/harness.py [--models tiny 100m] [--repeats 3] [--quick]

Rows: sft x {full, freeze, lora, qlora} and dpo (LoRA) through `tuneforge train`, and `baseline`: the same LoRA SFT
through plain transformers Trainer + peft as their docs teach it (apply_chat_template, DataCollatorForSeq2Seq
padding to the longest row, random order, no packing). All rows run interleaved, each repeat in the same order,
each run in its own process (clean peak RSS) with the same OMP_NUM_THREADS, on a generated length-skewed dataset
(many short samples, a few long). Each run line: real (non-padding) tokens/s and samples/s over one epoch, seconds
from process launch to the end of the first step, peak RSS (and CUDA peak), MFU against the fp32 matmul peak this
harness measures at the same thread count, `tuneforge estimate`'s prediction next to the measured peak, and CPU
pressure (/proc/pressure/cpu "some avg10") before and after, and the share of the training time this run's threads
spent waiting for a core (/proc/self/task/*/schedstat); runs above --max-wait are marked contended and left out of
the medians (unless every repeat was). Then one summary line per model x row with medians and the
ratios to the baseline. Precision: the second line says what `compute_type: auto` picks here and why (bf16 on a CPU
with AMX / AVX512-BF16 for the LoRA rows); `lora` (auto) and `lora_bf16` are compared with `lora_fp32`: tokens/s
and the largest loss gap (`--set logging_steps=1` for a loss at every step).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_data import build_model, real_tokens, write_dataset  # noqa: E402
from machine import cpu_pressure  # noqa: E402

ROWS = (
    "lora",
    "baseline",
    "lora_neat",
    "lora_random",
    "lora_bf16",
    "lora_fp32",
    "full",
    "freeze",
    "qlora",
    "dpo",
    "dpo_baseline",
)
# Each row is compared with the plain-library run of the same stage.
BASELINE_OF = {"dpo": "dpo_baseline", "dpo_baseline": "dpo_baseline"}
# Variants of LoRA SFT: neat packing instead of the default length grouping; the plain shuffle (the old default);
# bf16 or fp32 instead of compute_type auto (bf16 on a CPU with AMX / AVX512-BF16, fp32 on others).
VARIANTS = {
    "lora_neat": {"neat_packing": True},
    "lora_random": {"train_sampling_strategy": "random"},
    "lora_bf16": {"compute_type": "bf16"},  # bf16 autocast: fast on a CPU with AMX / AVX512-BF16, crawls without
    "lora_fp32": {"compute_type": "fp32"},  # what `lora` (auto) is compared with: speed and loss curve
}
# Rows compared with lora_fp32 when it ran: tokens/s ratio and the largest relative gap between their logged losses.
VS_FP32 = ("lora", "lora_bf16")
# What a baseline runs with, in our config's keys, so `tuneforge estimate` predicts the run that is measured:
# TRL's DPOConfig turns gradient checkpointing on by default, and the baseline keeps TRL's defaults.
BASELINE_SETTINGS = {"dpo_baseline": {"gradient_checkpointing": True}}
QUICK_ROWS = ("lora", "baseline")


def run_child(spec: dict, timeout: float) -> dict:
    spec = {**spec, "t_launch": time.time()}
    proc = subprocess.run(
        [sys.executable, str(HERE / "bench_worker.py"), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        tail = proc.stderr.strip().splitlines()[-5:]
        raise RuntimeError(f"run {spec.get('row')} failed ({proc.returncode}): " + " | ".join(tail))
    return json.loads(lines[-1])


def row_config(row: str, model: Path, data_dir: Path, out: Path, opts) -> dict:
    cfg = {
        "model_name_or_path": str(model),
        "dataset": "bench_dpo" if row == "dpo" else "bench_sft",
        "dataset_dir": str(data_dir),
        "template": "tokenizer",  # the model's own chat template: token for token what the baselines train on
        "stage": "dpo" if row == "dpo" else "sft",
        "finetuning_type": "lora" if row in ("lora", "qlora", "dpo") else row,
        "cutoff_len": opts.cutoff_len,
        "per_device_train_batch_size": opts.batch_size,
        "num_train_epochs": 1,
        "learning_rate": 1e-4,
        "logging_steps": 5,
        "save_steps": 100000,
        "seed": 0,
        "plot_loss": False,
        "disable_tqdm": True,
        "overwrite_output_dir": True,
        "output_dir": str(out),
    }
    if cfg["finetuning_type"] == "lora":
        cfg["lora_rank"] = opts.lora_rank
    if row == "qlora":
        cfg["quantization_bit"] = 4
    if row == "freeze":
        cfg["freeze_trainable_layers"] = 2
    cfg.update(opts.extra)
    return cfg


def flops_per_token(model_dir: Path, row: str, trainable: int) -> float:
    """Model FLOPs per real token: forward 2N, backward 2N (activations) + 2 x trained weights (freeze: backward
    through the head and the trained layers only); DPO adds the reference forward (2N). N: matmul parameters
    (layers and head; the embedding is a lookup)."""
    from tuneforge.model.estimate import param_counts, read_model_config

    counts = param_counts(read_model_config(str(model_dir)))
    n = counts["linear"] + (counts["head"] or counts["embedding"])
    trained = n if row == "full" else min(trainable, n)  # LoRA: the adapters' weight gradients
    per_token = 4 * n + 2 * trained
    if row == "freeze":  # the backward pass stops below the lowest trained layer: the head and the trained layers
        head = counts["head"] or counts["embedding"]
        per_token = 2 * n + 4 * (head + trained)
    return per_token + (2 * n if row.startswith("dpo") else 0)


def measure(row: str, model_name: str, model_dir: Path, data_dir: Path, work: Path, opts, ctx: dict) -> dict:
    import yaml

    from tuneforge.config import load_config
    from tuneforge.model.estimate import estimate_memory

    out = work / f"out-{model_name}-{row}"
    like = {"baseline": "lora", "dpo_baseline": "dpo"}.get(row, "lora" if row in VARIANTS else row)
    cfg = row_config(like, model_dir, data_dir, out, opts)
    cfg.update(VARIANTS.get(row, {}) | BASELINE_SETTINGS.get(row, {}))
    cfg_file = work / f"{model_name}-{row}.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    est = estimate_memory(load_config(str(cfg_file)))
    spec = {"kind": "tuneforge", "config": str(cfg_file), "row": row}
    if row in ("baseline", "dpo_baseline"):
        spec = {
            "kind": row,
            "row": row,
            "baseline": {
                "model": str(model_dir),
                "data_file": str(data_dir / ("bench_dpo.json" if row == "dpo_baseline" else "bench_sft.json")),
                "cutoff_len": opts.cutoff_len,
                "batch_size": opts.batch_size,
                "learning_rate": 1e-4,
                "lora_rank": opts.lora_rank,
                "method": "lora",
                "output_dir": str(out),
            },
        }
    before = cpu_pressure()
    res = run_child(spec, opts.timeout)
    return run_record(res, model_name, row, model_dir, est, ctx, [before, cpu_pressure()], opts.max_wait)


def run_record(
    res: dict, model_name: str, row: str, model_dir: Path, est: dict, ctx: dict, pressure: list, max_wait: float
) -> dict:
    """One run line from a run's marks (bench_worker's Timer: train begin / end, first step, CPU and run-queue
    seconds, peak RSS): tokens/s over the epoch, MFU, the estimate next to the peak, contention. `row` names the
    stage for the token count and the FLOPs (dpo*: chosen + rejected and a reference forward)."""
    tokens = ctx["tokens"]["dpo" if row.startswith("dpo") else "sft"]
    train_s = res["train_end"] - res["train_begin"]
    tps = tokens / train_s
    peak = res.get("peak_cuda_mib") or res["peak_rss_mib"]
    mfu = tps * flops_per_token(model_dir, row, est["trainable_params"]) / (ctx["peak_gflops"] * 1e9)
    wait_share = res["train_wait_s"] / max(res["train_wait_s"] + res["train_cpu_s"], 1e-9)
    return {
        "model": model_name,
        "row": row,
        "tokens_per_s": round(tps, 1),
        # per second of CPU time of the run's own threads: what contention on a shared machine does not change
        "tokens_per_cpu_s": round(tokens / res["train_cpu_s"], 1),
        "samples_per_s": round(ctx["samples"] / train_s, 3),
        "first_step_s": round(res["first_step"], 2),
        "train_s": round(train_s, 2),
        "steps": res["steps"],
        "real_tokens": tokens,
        "peak_rss_mib": round(res["peak_rss_mib"], 1),
        **({"peak_cuda_mib": round(res["peak_cuda_mib"], 1)} if "peak_cuda_mib" in res else {}),
        "predicted_mib": est["total"],
        "prediction_error": round(est["total"] / peak - 1, 3),
        "mfu": round(mfu, 4),
        "matmul_peak_gflops": round(ctx["peak_gflops"], 1),
        "threads": res["threads"],
        "cpu_pressure": pressure,
        "runqueue_wait_share": round(wait_share, 3),
        "contended": wait_share > max_wait,
        **({"precision": res["precision"]} if "precision" in res else {}),
        **({"losses": res["logged"]["loss"]} if "loss" in res.get("logged", {}) else {}),
    }


def summarise(runs: list[dict], peak_gflops: float) -> list[dict]:
    """Medians per model x row over the uncontended runs; MFU against the best peak measured in the whole run."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        r = {**r, "mfu": r["mfu"] * r["matmul_peak_gflops"] / peak_gflops}
        groups.setdefault((r["model"], r["row"]), []).append(r)
    out = []
    for (model, row), rs in groups.items():
        clean = [r for r in rs if not r["contended"]]
        use = clean or rs
        med = {
            k: round(statistics.median(r[k] for r in use), 4)
            for k in (
                "tokens_per_s",
                "tokens_per_cpu_s",
                "samples_per_s",
                "first_step_s",
                "peak_rss_mib",
                "predicted_mib",
                "mfu",
            )
        }
        med["prediction_error"] = round(med["predicted_mib"] / med["peak_rss_mib"] - 1, 3)
        out.append(
            {
                "summary": True,
                "model": model,
                "row": row,
                "runs": len(rs),
                "used": len(use),
                "all_contended": not clean,
                **med,
            }
        )
    for s in out:
        base_row = BASELINE_OF.get(s["row"], "baseline")
        base = next((b for b in out if b["model"] == s["model"] and b["row"] == base_row), None)
        if base and s is not base:
            s["tokens_per_s_vs_baseline"] = round(s["tokens_per_s"] / base["tokens_per_s"], 2)
            s["tokens_per_cpu_s_vs_baseline"] = round(s["tokens_per_cpu_s"] / base["tokens_per_cpu_s"], 2)
            s["peak_rss_vs_baseline"] = round(s["peak_rss_mib"] / base["peak_rss_mib"], 2)
    compare_with_fp32(out, runs)
    return out


def loss_gap(losses: list[float], reference: list[float]) -> float | None:
    """The largest |loss - reference| / reference over the logging steps both runs logged."""
    pairs = list(zip(losses, reference, strict=False))
    return round(max(abs(a - b) / abs(b) for a, b in pairs), 4) if pairs else None


def compare_with_fp32(summaries: list[dict], runs: list[dict]) -> None:
    """`lora` (compute_type auto) and `lora_bf16` against `lora_fp32` of the same model: the tokens/s ratio, and
    the loss gap between their first runs' curves (the same seed and data: only the precision differs)."""
    first = {}
    for r in runs:
        first.setdefault((r["model"], r["row"]), r)
    for s in summaries:
        fp32 = next((f for f in summaries if f["model"] == s["model"] and f["row"] == "lora_fp32"), None)
        if s["row"] not in VS_FP32 or fp32 is None:
            continue
        s["precision"] = first[(s["model"], s["row"])].get("precision")
        s["tokens_per_s_vs_fp32"] = round(s["tokens_per_s"] / fp32["tokens_per_s"], 2)
        s["tokens_per_cpu_s_vs_fp32"] = round(s["tokens_per_cpu_s"] / fp32["tokens_per_cpu_s"], 2)
        reference = first[(s["model"], "lora_fp32")].get("losses", [])
        s["loss_gap_vs_fp32"] = loss_gap(first[(s["model"], s["row"])].get("losses", []), reference)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "100m"], choices=["tiny", "100m"])
    parser.add_argument("--rows", nargs="+", choices=ROWS, help="default: all (--quick: lora baseline)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=96, help="dataset size (8%% long samples)")
    parser.add_argument("--samples-100m", type=int, default=96, help="dataset size for the 100m model")
    parser.add_argument("--cutoff-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument(
        "--max-wait",
        type=float,
        default=0.1,
        help="share of the training time this run's threads waited for a core; above it the run is contended",
    )
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra config keys for our rows")
    parser.add_argument("--work", help="folder for models, data and outputs (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny model, 16 samples, lora + baseline")
    opts = parser.parse_args(argv)
    import yaml

    opts.extra = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in opts.set)}
    if opts.quick:
        opts.models, opts.repeats, opts.samples, opts.cutoff_len = ["tiny"], 1, 16, 128
    opts.rows = opts.rows or list(QUICK_ROWS if opts.quick else ROWS)
    os.environ.setdefault("OMP_NUM_THREADS", str(min(2, os.cpu_count() or 1)))

    out = sys.stdout  # JSON only; libraries that print (deepspeed's accelerator notice, progress bars) go to stderr
    with contextlib.redirect_stdout(sys.stderr), tempfile.TemporaryDirectory() as tmp:
        work = Path(opts.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        best = 0.0

        def measure_peak() -> float:  # at the start and after every repeat: contention only lowers it, keep the best
            nonlocal best
            peak = run_child({"kind": "peak", "row": "peak"}, opts.timeout)
            best = max(best, peak["gflops"])
            record = {
                "matmul_peak_gflops": round(peak["gflops"], 1),
                "best": round(best, 1),
                "threads": peak["threads"],
            }
            print(json.dumps(record), file=out, flush=True)
            return best

        measure_peak()
        from tuneforge.utils.devices import auto_compute_type

        chosen, why = auto_compute_type()  # what the `lora` row (and every row without compute_type) trains in
        print(json.dumps({"compute_type_auto": chosen, "why": why}), file=out, flush=True)
        runs = []
        for model_name in opts.models:
            model_dir = build_model(model_name, work)
            samples = opts.samples_100m if model_name == "100m" and not opts.quick else opts.samples
            data_dir = work / f"data-{model_name}"
            rows = write_dataset(data_dir, samples)
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(model_dir)
            ctx = {
                "tokens": real_tokens(tokenizer, rows, opts.cutoff_len),
                "samples": samples,
                "peak_gflops": best,
            }
            for _ in range(opts.repeats):
                for row in opts.rows:
                    record = measure(row, model_name, model_dir, data_dir, work, opts, ctx)
                    runs.append(record)
                    print(json.dumps(record), file=out, flush=True)
                ctx["peak_gflops"] = measure_peak()
        for s in summarise(runs, best):
            print(json.dumps(s), file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
