"""Stream a generated dataset of 1,000,000 samples through TuneForge's streaming pipeline and print the process's
resident memory (RSS) against the samples seen, as JSON lines: it should stay flat as the stream goes on.

The pipeline is the one `streaming: true` trains on: JSON lines read lazily → conversations → SFT encoding in
batches of `preprocessing_batch_size` → shuffle buffer of `buffer_size` → DataCollatorForSeq2Seq batches (what the
Trainer's dataloader does). `--train` also runs the tiny model's optimizer steps (slower; same data path).
`--compare N,N,...` loads generated datasets of N samples the in-memory way (streaming: false), each in a fresh
process, to show the memory that grows with the dataset when it is not streamed.

    .venv/bin/python benchmarks/streaming_memory.py --samples 1000000 --steps 4000 --batch-size 16
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = [
    "data",
    "model",
    "train",
    "token",
    "stream",
    "memory",
    "river",
    "mountain",
    "apple",
    "window",
    "garden",
    "music",
    "number",
    "answer",
    "question",
    "explain",
    "small",
    "large",
    "quick",
    "slow",
    "bright",
    "quiet",
    "summer",
    "winter",
    "coffee",
    "paper",
    "letter",
    "travel",
    "city",
    "ocean",
]


def rss_mb() -> float:
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


def sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def write_dataset(folder: Path, samples: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with (folder / "big.jsonl").open("w", encoding="utf-8") as f:
        for i in range(samples):
            row = {"instruction": f"#{i} {sentence(rng, 4, 14)}?", "input": "", "output": sentence(rng, 6, 30) + "."}
            f.write(json.dumps(row) + "\n")
    (folder / "dataset_info.json").write_text(json.dumps({"big": {"file_name": "big.jsonl"}}), encoding="utf-8")
    return folder / "big.jsonl"


def config(model: Path, data: Path, **extra):
    from tuneforge.config import load_config

    settings = {
        "model_name_or_path": str(model),
        "dataset": "big",
        "dataset_dir": str(data),
        "template": "qwen",
        "cutoff_len": 64,
        "max_steps": 1,
        **extra,
    }
    return load_config(None, settings)


def stream(args, model: Path, data: Path) -> None:
    import torch
    from transformers import AutoTokenizer, DataCollatorForSeq2Seq

    from tuneforge.data.loader import get_sft_datasets
    from tuneforge.data.sft import IGNORE_INDEX
    from tuneforge.data.template import get_template

    torch.set_num_threads(1)
    cfg = config(model, data, streaming=True, buffer_size=args.buffer_size)
    tokenizer = AutoTokenizer.from_pretrained(model)
    template = get_template("qwen", tokenizer)
    template.fix_tokenizer(tokenizer)
    train, _ = get_sft_datasets(cfg.data, template, tokenizer, seed=0)
    collate = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX)
    loader = torch.utils.data.DataLoader(train, batch_size=args.batch_size, collate_fn=collate)
    step_fn = trainer_step(model, args) if args.train else None
    emit({"event": "start", "rss_mb": rss_mb(), "buffer_size": args.buffer_size, "batch_size": args.batch_size})
    seen, start, reports = 0, time.perf_counter(), []
    for step, batch in enumerate(loader, 1):
        seen += batch["input_ids"].shape[0]
        if step_fn:
            step_fn(batch)
        if step % args.report_every == 0 or step == args.steps:
            elapsed = time.perf_counter() - start
            reports.append((seen, rss_mb()))
            emit({"step": step, "samples_seen": seen, "rss_mb": reports[-1][1], "samples_per_s": round(seen / elapsed)})
        if step == args.steps:
            break
    (first_seen, first), (last_seen, last) = reports[0], reports[-1]
    peak = max(r for _, r in reports)
    emit({"summary": "streaming", "from_samples": first_seen, "to_samples": last_seen, "rss_from_mb": first,
          "rss_to_mb": last, "growth_mb": round(last - first, 1), "rss_max_mb": peak})  # fmt: skip


def trainer_step(model_dir: Path, args):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(batch):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    return step


def load_in_memory(model: Path, data: Path, samples: int) -> None:
    """One non-streaming load of a generated dataset of `samples` rows (in its own process, for --compare)."""
    from transformers import AutoTokenizer

    from tuneforge.data.loader import get_sft_datasets
    from tuneforge.data.template import get_template

    data.mkdir(parents=True, exist_ok=True)
    if not (data / "big.jsonl").is_file():
        write_dataset(data, samples)
    cfg = config(model, data)
    tokenizer = AutoTokenizer.from_pretrained(model)
    template = get_template("qwen", tokenizer)
    import datasets  # noqa: F401 -- imported before the first reading, like the streaming run

    before = rss_mb()
    train, _ = get_sft_datasets(cfg.data, template, tokenizer, seed=0)
    after = rss_mb()
    emit({"mode": "in_memory", "samples": len(train), "rss_mb": after, "growth_mb": round(after - before, 1)})


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000, help="rows in the generated JSON lines file")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--buffer-size", type=int, default=16384)
    parser.add_argument("--report-every", type=int, default=250)
    parser.add_argument("--train", action="store_true", help="also run an optimizer step of the tiny model")
    parser.add_argument("--compare", default="", help="comma-separated sample counts to load in memory")
    parser.add_argument("--workdir", default=None, help="reuse a folder (generated data and tiny model)")
    parser.add_argument("--in-memory", type=int, default=None, help=argparse.SUPPRESS)  # a --compare child
    args = parser.parse_args()

    from tuneforge.model.tiny import create_tiny_model

    work = Path(args.workdir or tempfile.mkdtemp(prefix="tf-stream-"))
    data, model = work / "data", work / "tiny-qwen2"
    data.mkdir(parents=True, exist_ok=True)
    if args.in_memory is not None:  # the child of --compare
        load_in_memory(model, work / f"data-{args.in_memory}", args.in_memory)
        return
    if not (data / "big.jsonl").is_file():
        began = time.perf_counter()
        file = write_dataset(data, args.samples)
        emit({"event": "generated", "samples": args.samples, "mb": round(file.stat().st_size / 2**20, 1),
              "seconds": round(time.perf_counter() - began, 1)})  # fmt: skip
    if not (model / "config.json").is_file():
        create_tiny_model(model, arch="qwen2")
    stream(args, model, data)
    for count in [int(c) for c in args.compare.split(",") if c.strip()]:
        cmd = [sys.executable, __file__, "--workdir", str(work), "--in-memory", str(count)]
        print(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
