"""One benchmark run in its own process (clean peak RSS): `python benchmarks/bench_worker.py SPEC_JSON`.

kind "tuneforge": `tuneforge train` on the spec's YAML config, in-process. kind "baseline": the same data through
plain transformers Trainer + peft as their docs teach it (apply_chat_template, DataCollatorForSeq2Seq padding to
the longest row, no packing). kind "dpo_baseline" / "grpo_baseline": plain TRL DPOTrainer / GRPOTrainer + peft
(grpo: benchmarks/grpo_vs_trl.py). kind "peak": the fp32 matmul peak (2048 x 2048) at this process's thread count.
Prints one JSON line: timings (s since the process started), steps, peak RSS (and CUDA peak) in MiB.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

T0 = time.time()  # replaced by the launch time the harness passes (spec "t_launch"): startup is counted


def matmul_peak(size: int = 2048, repeats: int = 8) -> float:
    """Best GFLOP/s of an fp32 size x size matmul."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * size**3 / (time.perf_counter() - t) / 1e9)
    return best


def runqueue_wait() -> tuple[float, float]:
    """(seconds on a CPU, seconds ready but waiting for one) of this process's threads: /proc/self/task/*/schedstat.
    Waiting means another process held the core (contention), whatever the machine-wide pressure says."""
    run = wait = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/schedstat") as f:
                fields = f.read().split()
        except OSError:
            continue
        run, wait = run + int(fields[0]), wait + int(fields[1])
    return run / 1e9, wait / 1e9


def resident_mib() -> float | None:
    """This process's resident memory now (VmRSS), in MiB; None where /proc is absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def precision(args, model) -> str:
    """What the run trains in: bf16 / fp16 autocast (the Trainer's switches), else the model's dtype (pure_bf16)."""
    if args.bf16 or args.fp16:
        return "bf16" if args.bf16 else "fp16"
    dtype = str(getattr(model, "dtype", "torch.float32"))
    return {"torch.bfloat16": "pure_bf16", "torch.float16": "pure_fp16"}.get(dtype, "fp32")


def install_timer() -> dict:
    """A callback on every Trainer (ours, TRL's, the baseline's): train begin, first step end, train end."""
    from transformers import TrainerCallback, trainer

    marks: dict = {"steps": 0}

    class Timer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            global T0
            # a warm worker's child (vs_llamafactory --warm) learns its caller's launch time from the environment
            T0 = float(os.environ.get("BENCH_T_LAUNCH", T0))
            marks["train_begin"] = time.time() - T0
            marks["sched_begin"] = runqueue_wait()
            marks["rss_at_train_begin_mib"] = resident_mib()  # imports, model and data: before any step
            marks["precision"] = precision(args, kwargs.get("model"))

        def on_step_end(self, args, state, control, **kwargs):
            marks["steps"] += 1
            marks.setdefault("first_step", time.time() - T0)

        def on_log(self, args, state, control, logs=None, **kwargs):  # GRPO: the work a run did, besides its time
            for key in ("loss", "reward", "completions/mean_length", "kl"):
                if key in (logs or {}):
                    marks.setdefault("logged", {}).setdefault(key, []).append(logs[key])

        def on_train_end(self, args, state, control, **kwargs):
            marks["train_end"] = time.time() - T0
            (run0, wait0), (run1, wait1) = marks.pop("sched_begin"), runqueue_wait()
            marks["train_cpu_s"], marks["train_wait_s"] = run1 - run0, wait1 - wait0

    trainer.DEFAULT_CALLBACKS.append(Timer)
    return marks


def run_tuneforge(spec: dict) -> None:
    from tuneforge.config import load_config
    from tuneforge.train.run import run_training
    from tuneforge.utils.logging import quiet_libraries

    quiet_libraries()
    run_training(load_config(spec["config"]))


def baseline_arguments(o: dict) -> dict:
    """The training settings every baseline shares with our rows (batch, epochs, lr, schedule, seed)."""
    import torch

    return {
        "output_dir": o["output_dir"],
        "per_device_train_batch_size": o["batch_size"],
        "num_train_epochs": 1,
        "learning_rate": o["learning_rate"],
        "lr_scheduler_type": "cosine",
        "logging_steps": 5,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": not torch.cuda.is_available(),
        "seed": 0,
        "disable_tqdm": True,
    }


def baseline_lora(o: dict):
    from peft import LoraConfig

    return LoraConfig(
        r=o["lora_rank"], lora_alpha=2 * o["lora_rank"], target_modules="all-linear", task_type="CAUSAL_LM"
    )


def run_baseline(spec: dict) -> None:
    """Plain transformers + peft, as the docs teach chat fine-tuning (no packing, padding to the longest)."""
    import torch
    from datasets import load_dataset
    from peft import get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
    )

    o = spec["baseline"]
    tokenizer = AutoTokenizer.from_pretrained(o["model"])
    dataset = load_dataset("json", data_files=o["data_file"], split="train")

    def tokenize(row):
        enc = tokenizer.apply_chat_template(
            row["messages"],
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
            truncation=True,
            max_length=o["cutoff_len"],
        )
        labels = [t if m else -100 for t, m in zip(enc["input_ids"], enc["assistant_masks"], strict=True)]
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}

    dataset = dataset.map(tokenize, remove_columns=dataset.column_names)
    model = AutoModelForCausalLM.from_pretrained(o["model"], dtype=torch.float32)
    if o["method"] == "lora":
        model = get_peft_model(model, baseline_lora(o))
    args = TrainingArguments(**baseline_arguments(o))
    collator = DataCollatorForSeq2Seq(tokenizer, model=model, padding="longest")
    Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator, processing_class=tokenizer).train()


def run_dpo_baseline(spec: dict) -> None:
    """Plain TRL DPOTrainer + peft, as TRL's docs teach it: conversational prompt / chosen / rejected rows, the
    tokenizer's chat template, LoRA through `peft_config` (the reference is the base with the adapter disabled)."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    o = spec["baseline"]
    tokenizer = AutoTokenizer.from_pretrained(o["model"])
    rows = json.loads(Path(o["data_file"]).read_text(encoding="utf-8"))
    dataset = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": r["conversations"][0]["value"]}],
                "chosen": [{"role": "assistant", "content": r["chosen"]["value"]}],
                "rejected": [{"role": "assistant", "content": r["rejected"]["value"]}],
            }
            for r in rows
        ]
    )
    model = AutoModelForCausalLM.from_pretrained(o["model"], dtype=torch.float32)
    # bf16=False: our rows compute in fp32 (compute_type auto on a CPU); TRL's default bf16=True would autocast
    # the baseline's matmuls to bf16, another workload (on a CPU with AMX, a much faster one)
    args = DPOConfig(**baseline_arguments(o), max_length=o["cutoff_len"], beta=0.1, bf16=False)
    DPOTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=baseline_lora(o)
    ).train()


def run_grpo_baseline(spec: dict) -> None:
    """Plain TRL GRPOTrainer + peft, as TRL's docs teach it: the model by path, a "prompt" column of conversational
    messages (TRL applies the tokenizer's chat template), a reward function, LoRA through `peft_config`. The reward
    is our built-in `length` (characters), the callable `reward_funcs: length` gives our runs."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from tuneforge.train.rewards import RewardSettings, build_reward_funcs

    o = spec["baseline"]
    rows = json.loads(Path(o["data_file"]).read_text(encoding="utf-8"))
    dataset = Dataset.from_list(  # alpaca rows as our loader reads them: instruction, then input on its own line
        [
            {
                "prompt": [{"role": "user", "content": "\n".join(p for p in (r["instruction"], r["input"]) if p)}],
                "answer": r["answer"],
            }
            for r in rows
        ]
    )
    rewards = build_reward_funcs("length", RewardSettings(target_length=o["length_target"], length_unit="chars"))
    # bf16 and gradient checkpointing off (GRPOConfig turns both on by default): our rows run fp32 without
    # checkpointing; the settings both sides share come from the harness
    args = GRPOConfig(**baseline_arguments(o), **o["grpo"], bf16=False, gradient_checkpointing=False)
    GRPOTrainer(
        model=o["model"], reward_funcs=rewards, args=args, train_dataset=dataset, peft_config=baseline_lora(o)
    ).train()


def main() -> int:
    global T0
    spec = json.loads(sys.argv[1])
    T0 = spec.get("t_launch", T0)
    out = sys.stdout
    sys.stdout = sys.stderr  # libraries that print go to stderr; stdout carries the one JSON line
    result: dict = {}
    if spec["kind"] == "peak":
        result["gflops"] = matmul_peak()
    else:
        marks = install_timer()
        runners = {
            "tuneforge": run_tuneforge,
            "baseline": run_baseline,
            "dpo_baseline": run_dpo_baseline,
            "grpo_baseline": run_grpo_baseline,
        }
        runners[spec["kind"]](spec)
        result.update(marks)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    import torch

    if torch.cuda.is_available():
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 1024**2
    result["threads"] = torch.get_num_threads()
    print(json.dumps(result), file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
