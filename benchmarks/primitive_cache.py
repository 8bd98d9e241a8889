"""What oneDNN's and ideep's primitive caches cost a process: bf16 autocast matmuls on a CPU, one new token count
(the first dimension) per call, as padding-free batches give a training run one per step. One JSON line per setting:
the resident memory the process gained after each block of new shapes, and the time per matmul.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/primitive_cache.py --shapes 1000
    ... --settings 1024/1024 64/64      # ONEDNN_PRIMITIVE_CACHE_CAPACITY/LRU_CACHE_CAPACITY

Each setting runs in its own process (both variables are read when the first primitive is built) on the allocator
`tuneforge train` would use (jemalloc with our MALLOC_CONF where the system has it). `--repeat-every K` cycles the
token counts after K shapes, as a run whose steps repeat their shapes would. On a CPU without native bf16
(AVX512-BF16 / AMX) torch does not run these matmuls through oneDNN and the caches stay empty: the script says so.
The caps `tuneforge train` sets are in src/tuneforge/utils/onednn_cache.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

DEFAULT_SETTINGS = ["1024/1024", "128/1024", "128/64", "64/64"]


def measure(shapes: int, in_features: int, out_features: int, repeat_every: int, every: int) -> dict:
    """In this process: `shapes` autocast matmuls (M, in) x (in, out), M = 100, 101, ...; RSS growth per block."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    weight = torch.randn(out_features, in_features)
    rows = torch.randn(100 + min(shapes, repeat_every or shapes), in_features)

    def rss_mib() -> float:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.nn.functional.linear(rows[:7], weight)  # one-off set-up outside the measurement
    start, growth = rss_mib(), []
    began = time.perf_counter()
    for i in range(shapes):
        count = 100 + (i % repeat_every if repeat_every else i)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.functional.linear(rows[:count], weight)
        if (i + 1) % every == 0:
            growth.append(round(rss_mib() - start, 1))
    return {
        "rss_growth_mib": growth,
        "ms_per_matmul": round((time.perf_counter() - began) * 1000 / shapes, 3),
        "onednn_bf16": torch.ops.mkldnn._is_mkldnn_bf16_supported(),
        "read": {name: os.environ.get(name) for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")},
    }


def run_setting(setting: str, args) -> dict:
    onednn, ideep = setting.split("/")
    env = dict(os.environ, ONEDNN_PRIMITIVE_CACHE_CAPACITY=onednn, LRU_CACHE_CAPACITY=ideep, OMP_NUM_THREADS="1")
    from tuneforge.utils.allocator import allocator_environment

    env = allocator_environment(env) or env  # as `tuneforge train` re-executes itself
    command = [sys.executable, __file__, "--child", *(str(v) for v in (args.shapes, args.in_features))]
    command += [str(v) for v in (args.out_features, args.repeat_every, args.every)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    preload = env.get("LD_PRELOAD", "")
    return {"onednn_capacity": int(onednn), "ideep_capacity": int(ideep), "preload": preload, **result}


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(measure(*(int(v) for v in sys.argv[2:7]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", type=int, default=1000, help="matmuls, each with a token count of its own")
    parser.add_argument("--in-features", type=int, default=768)
    parser.add_argument("--out-features", type=int, default=3072)
    parser.add_argument("--repeat-every", type=int, default=0, help="cycle the token counts after this many (0: never)")
    parser.add_argument("--every", type=int, default=250, help="record the RSS growth after this many matmuls")
    parser.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS, help="ONEDNN/LRU capacities")
    args = parser.parse_args()
    for setting in args.settings:
        result = run_setting(setting, args)
        print(json.dumps({"shapes": args.shapes, "in": args.in_features, "out": args.out_features, **result}))
        if not result["onednn_bf16"]:
            print(json.dumps({"note": "no native bf16 on this CPU: torch does not use oneDNN for these matmuls"}))
            break


if __name__ == "__main__":
    main()
