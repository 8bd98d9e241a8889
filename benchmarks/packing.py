"""How many padding tokens packing saves on the shipped SFT datasets. Prints JSON lines, one per dataset ×
cutoff_len, then a total.

Unpacked: samples in a shuffled order, batched and padded to each batch's longest row (what the SFT collator
does). Packed: the same samples packed into cutoff_len rows (best-fit decreasing), shuffled, batched and padded
the same way. Every real token is trained on in both cases; the difference is pure padding, i.e. wasted compute.

    python benchmarks/packing.py [--model DIR] [--template qwen] [--batch-size 8] [--cutoff-len 512 1024 2048]

Without --model a tiny model is built offline in a temporary folder (its tokenizer is trained on text we ship).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SFT_DATASETS = ("identity", "alpaca_en_demo", "alpaca_zh_demo", "sharegpt_demo")


def shuffled(values: list[int], seed: int) -> list[int]:
    values = list(values)
    random.Random(seed).shuffle(values)
    return values


def measure(name: str, cutoff_len: int, batch_size: int, template_name: str, tokenizer, seed: int) -> dict:
    from tuneforge.config.data_args import DataArguments
    from tuneforge.data.loader import get_sft_datasets
    from tuneforge.data.packing import greedy_knapsack, padding_stats
    from tuneforge.data.template import get_template

    args = DataArguments(dataset=name, dataset_dir=str(ROOT / "data"), template=template_name, cutoff_len=cutoff_len)
    template = get_template(template_name, tokenizer)
    template.fix_tokenizer(tokenizer)
    train, _ = get_sft_datasets(args, template, tokenizer, seed=seed)
    lengths = [len(ids) for ids in train["input_ids"]]
    rows = [sum(lengths[i] for i in b) for b in greedy_knapsack(lengths, cutoff_len)]
    plain = padding_stats(shuffled(lengths, seed), batch_size)
    packed = padding_stats(shuffled(rows, seed), batch_size)
    assert plain["tokens"] == packed["tokens"]
    steps = -(-plain["rows"] // batch_size), -(-packed["rows"] // batch_size)
    return {
        "dataset": name,
        "cutoff_len": cutoff_len,
        "batch_size": batch_size,
        "samples": plain["rows"],
        "tokens": plain["tokens"],
        "packed_rows": packed["rows"],
        "padding_unpacked": plain["padding"],
        "padding_packed": packed["padding"],
        "padding_saved": plain["padding"] - packed["padding"],
        "padding_share_unpacked": round(plain["padding"] / (plain["tokens"] + plain["padding"]), 4),
        "padding_share_packed": round(packed["padding"] / (packed["tokens"] + packed["padding"]), 4),
        "steps_per_epoch": {"unpacked": steps[0], "packed": steps[1]},
        "mean_sample_tokens": round(plain["tokens"] / plain["rows"], 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder whose tokenizer to use (default: a tiny offline model)")
    parser.add_argument("--template", default="qwen")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--cutoff-len", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--datasets", nargs="+", default=list(SFT_DATASETS))
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args(argv)

    out = sys.stdout  # JSON only; libraries that print on import (deepspeed's accelerator notice) go to stderr
    with contextlib.redirect_stdout(sys.stderr), tempfile.TemporaryDirectory() as tmp:
        from transformers import AutoTokenizer

        model = opts.model
        if model is None:
            from tuneforge.model.tiny import create_tiny_model

            model = str(create_tiny_model(Path(tmp) / "tiny", arch="qwen2"))
        tokenizer = AutoTokenizer.from_pretrained(model)
        total = {"padding_unpacked": 0, "padding_packed": 0, "tokens": 0}
        for cutoff_len in opts.cutoff_len:
            for name in opts.datasets:
                record = measure(name, cutoff_len, opts.batch_size, opts.template, tokenizer, opts.seed)
                print(json.dumps(record), file=out, flush=True)
                for key in total:
                    total[key] += record[key]
    total["padding_saved"] = total["padding_unpacked"] - total["padding_packed"]
    total["padding_saved_share"] = round(total["padding_saved"] / max(total["padding_unpacked"], 1), 4)
    print(json.dumps({"total": total, "tokenizer": opts.model or "tiny-qwen2 (offline)"}), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
