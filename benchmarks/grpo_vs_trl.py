"""GRPO speed and memory: `tuneforge train` (stage grpo) against plain TRL GRPOTrainer + peft. One JSON line per run.

    OMP_NUM_THREADS=1 python benchmarks/grpo_vs_trl.py [--models tiny] [--repeats 3] [--steps 30] [--quick]
    python benchmarks/grpo_vs_trl.py --table RESULTS.jsonl [...]      # the Markdown table of docs/benchmarks.md

Rows: `grpo` (ours, beta 0: no reference model) and `grpo_baseline` (TRL as its docs teach it: the model by path,
a conversational "prompt" column, `peft_config=LoraConfig(...)`); `grpo_kl` / `grpo_kl_baseline`: the same with
beta 0.04 (a KL term to the reference: the base with the adapter switched off). Both sides: the same generated
model, the math_demo prompts (data/math_demo.json) rendered by the tokenizer's chat template (`template:
tokenizer` on ours, TRL's own apply_chat_template on the baseline), the same reward (our built-in `length`,
counting characters), LoRA r8 / alpha 16 on every linear layer, 4 generations per prompt, 8 completions per step,
completions of at most 32 tokens at temperature 1.0, lr 1e-4, fp32, no gradient checkpointing, one optimizer step
per generation round. Each run in its own process (benchmarks/bench_worker.py: clean peak RSS), rows interleaved,
each repeat in the same order. Per run: training wall time (train begin -> end) and steps/s, completions and
completion tokens per second (the mean completion length is logged by TRL's trainer on both sides), steps per
CPU-second of the run's own threads, process launch -> end of step 1, peak RSS and RSS at train begin, the mean
logged reward (equal on both sides: they sample the same completions), and the share of the training time the
run waited for a core (above --max-wait: contended, left out of the medians). Then one summary line per model x row
with medians and the ratios to the baseline of the same beta.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_data import build_model  # noqa: E402
from harness import run_child  # noqa: E402
from machine import cpu_pressure  # noqa: E402

DATA_DIR = HERE.parent / "data"  # math_demo.json, registered in data/dataset_info.json
ROWS = ("grpo", "grpo_baseline", "grpo_kl", "grpo_kl_baseline")
BETA = {"grpo": 0.0, "grpo_baseline": 0.0, "grpo_kl": 0.04, "grpo_kl_baseline": 0.04}
LENGTH_TARGET = 64  # characters: 32 tokens of the random model are ~100, so the reward varies within a group


def shared_settings(opts, beta: float) -> dict:
    """What both sides run with, in keys TRL's GRPOConfig and our config share."""
    return {
        "num_generations": 4,
        "max_completion_length": opts.completion_length,
        "temperature": 1.0,
        "max_steps": opts.steps,
        "beta": beta,
        "loss_type": "dapo",
        "num_iterations": 1,
    }


def our_config(row: str, model: Path, out: Path, opts) -> dict:
    cfg = {
        "stage": "grpo",
        "model_name_or_path": str(model),
        "dataset": "math_demo",
        "dataset_dir": str(DATA_DIR),
        "template": "tokenizer",  # the model's own chat template: the prompt tokens TRL's apply_chat_template gives
        "finetuning_type": "lora",
        "lora_rank": 8,
        "lora_alpha": 16,
        "lora_target": "all",
        "per_device_train_batch_size": opts.batch_size,
        "learning_rate": 1e-4,
        "lr_scheduler_type": "cosine",
        "reward_funcs": "length",
        "length_reward_unit": "chars",
        "length_reward_target": LENGTH_TARGET,
        "compute_type": "fp32",
        "gradient_checkpointing": False,
        "logging_steps": 5,
        "save_steps": 100000,
        "seed": 0,
        "plot_loss": False,
        "disable_tqdm": True,
        "overwrite_output_dir": True,
        "output_dir": str(out),
        **shared_settings(opts, BETA[row]),
    }
    cfg.update(opts.extra)
    return cfg


def predicted_mib(cfg_file: Path) -> float | None:
    """`tuneforge estimate`'s prediction for our config (None where it cannot estimate the stage)."""
    from tuneforge.config import load_config
    from tuneforge.model.estimate import estimate_memory

    try:
        return estimate_memory(load_config(str(cfg_file)))["total"]
    except Exception as exc:  # noqa: BLE001  (a benchmark line is still worth having)
        print(f"estimate failed: {exc}", file=sys.stderr)
        return None


def measure(row: str, model_name: str, model_dir: Path, work: Path, opts) -> dict:
    import yaml

    out = work / f"out-{model_name}-{row}"
    predicted = None
    if row.endswith("_baseline"):
        spec = {
            "kind": "grpo_baseline",
            "row": row,
            "baseline": {
                "model": str(model_dir),
                "data_file": str(DATA_DIR / "math_demo.json"),
                "batch_size": opts.batch_size,
                "learning_rate": 1e-4,
                "lora_rank": 8,  # baseline_lora: alpha = 2 x rank = 16, every linear layer
                "length_target": LENGTH_TARGET,
                "output_dir": str(out),
                "grpo": shared_settings(opts, BETA[row]),
            },
        }
    else:
        cfg_file = work / f"{model_name}-{row}.yaml"
        cfg_file.write_text(yaml.safe_dump(our_config(row, model_dir, out, opts)), encoding="utf-8")
        predicted = predicted_mib(cfg_file)
        spec = {"kind": "tuneforge", "config": str(cfg_file), "row": row}
    before = cpu_pressure()
    res = run_child(spec, opts.timeout)
    after = cpu_pressure()
    train_s = res["train_end"] - res["train_begin"]
    logged = res.get("logged", {})
    mean_length = statistics.mean(logged["completions/mean_length"]) if "completions/mean_length" in logged else None
    completions = res["steps"] * opts.batch_size  # one generation round of batch_size completions per step
    wait_share = res["train_wait_s"] / max(res["train_wait_s"] + res["train_cpu_s"], 1e-9)
    return {
        "model": model_name,
        "row": row,
        "beta": BETA[row],
        "steps": res["steps"],
        "train_s": round(train_s, 2),
        "steps_per_s": round(res["steps"] / train_s, 4),
        # per second of CPU time of the run's own threads: what contention on a shared machine does not change
        "steps_per_cpu_s": round(res["steps"] / res["train_cpu_s"], 4),
        "completions_per_s": round(completions / train_s, 3),
        "completion_tokens_per_s": round(completions * mean_length / train_s, 1) if mean_length else None,
        "mean_completion_length": round(mean_length, 2) if mean_length else None,
        "mean_reward": round(statistics.mean(logged["reward"]), 4) if "reward" in logged else None,
        "mean_kl": round(statistics.mean(logged["kl"]), 6) if "kl" in logged else None,
        "first_step_s": round(res["first_step"], 2),
        "peak_rss_mib": round(res["peak_rss_mib"], 1),
        "rss_at_train_begin_mib": round(res["rss_at_train_begin_mib"] or 0, 1),
        **({"peak_cuda_mib": round(res["peak_cuda_mib"], 1)} if "peak_cuda_mib" in res else {}),
        "predicted_mib": predicted,
        "threads": res["threads"],
        "cpu_pressure": [before, after],
        "runqueue_wait_share": round(wait_share, 3),
        "contended": wait_share > opts.max_wait,
    }


MEDIANS = ("steps_per_s", "steps_per_cpu_s", "completions_per_s", "completion_tokens_per_s", "first_step_s")
MEDIANS += ("peak_rss_mib", "rss_at_train_begin_mib", "mean_completion_length", "mean_reward")


def summarise(runs: list[dict]) -> list[dict]:
    """Medians per model x row over the uncontended runs (over all where every one was contended); steps per
    CPU-second over all runs; ratios to the baseline row of the same model and beta."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        if "row" in r and not r.get("summary"):
            groups.setdefault((r["model"], r["row"]), []).append(r)
    out = []
    for (model, row), rs in groups.items():
        clean = [r for r in rs if not r["contended"]]
        use = clean or rs
        values = {k: [r[k] for r in use if r.get(k) is not None] for k in MEDIANS}  # older lines lack some keys
        med = {k: round(statistics.median(v), 4) for k, v in values.items() if v}
        med["steps_per_cpu_s"] = round(statistics.median(r["steps_per_cpu_s"] for r in rs), 4)
        record = {"summary": True, "model": model, "row": row, "beta": rs[0]["beta"], "runs": len(rs)}
        out.append({**record, "used": len(use), "all_contended": not clean, **med})
    for s in out:
        base_row = "grpo_kl_baseline" if s["beta"] else "grpo_baseline"
        base = next((b for b in out if b["model"] == s["model"] and b["row"] == base_row), None)
        if base and s is not base:
            s["steps_per_s_vs_baseline"] = round(s["steps_per_s"] / base["steps_per_s"], 3)
            s["steps_per_cpu_s_vs_baseline"] = round(s["steps_per_cpu_s"] / base["steps_per_cpu_s"], 3)
            s["peak_rss_vs_baseline"] = round(s["peak_rss_mib"] / base["peak_rss_mib"], 3)
    return out


COLUMNS = (
    "model", "row", "beta", "steps/s", "per CPU-s", "vs baseline (CPU-s)", "completion tokens/s",
    "first step (s)", "peak RSS (MiB)", "RSS vs baseline", "mean completion length", "uncontended runs",
)  # fmt: skip


def table(files: list[str]) -> str:
    runs = [json.loads(line) for f in files for line in Path(f).read_text().splitlines() if line.strip()]
    summaries = {(s["model"], s["row"]): s for s in summarise(runs)}
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for (model, row), s in summaries.items():
        base = summaries.get((model, "grpo_kl_baseline" if s["beta"] else "grpo_baseline"), s)
        cells = (
            model, row, s["beta"], f"{s['steps_per_s']:.3f}", f"{s['steps_per_cpu_s']:.3f}",
            f"{s['steps_per_cpu_s'] / base['steps_per_cpu_s']:.2f}×", f"{s['completion_tokens_per_s']:,.0f}",
            f"{s['first_step_s']:.1f}", f"{s['peak_rss_mib']:,.0f}", f"{s['peak_rss_mib'] / base['peak_rss_mib']:.2f}×",
            f"{s['mean_completion_length']:.1f}", f"{s['used'] if not s['all_contended'] else 0}/{s['runs']}",
        )  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny"], choices=["tiny", "100m"])
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per run (one generation round each)")
    parser.add_argument("--batch-size", type=int, default=8, help="completions per step (2 prompts x 4)")
    parser.add_argument("--completion-length", type=int, default=32, help="max_completion_length")
    parser.add_argument(
        "--max-wait", type=float, default=0.1, help="runqueue wait share above which a run is contended"
    )
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra config keys for our rows")
    parser.add_argument("--work", help="folder for models and outputs (default: a temporary folder)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 1 repeat of 5 steps (one logging step), beta 0 rows"
    )
    parser.add_argument("--table", nargs="+", metavar="RESULTS", help="print the Markdown table of these results")
    opts = parser.parse_args(argv)
    if opts.table:
        print(table(opts.table))
        return 0
    import yaml

    opts.extra = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in opts.set)}
    if opts.quick:
        opts.repeats, opts.steps, opts.rows = 1, 5, ["grpo", "grpo_baseline"]
    os.environ.setdefault("OMP_NUM_THREADS", str(min(2, os.cpu_count() or 1)))

    out = sys.stdout  # JSON only; what libraries print goes to stderr
    with contextlib.redirect_stdout(sys.stderr), tempfile.TemporaryDirectory() as tmp:
        work = Path(opts.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        runs = []
        for model_name in opts.models:
            model_dir = build_model(model_name, work)
            for _ in range(opts.repeats):
                for row in opts.rows:
                    record = measure(row, model_name, model_dir, work, opts)
                    runs.append(record)
                    print(json.dumps(record), file=out, flush=True)
        for s in summarise(runs):
            print(json.dumps(s), file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
