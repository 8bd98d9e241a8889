"""The API under a long load, as users run it: `python -m tuneforge api` in its own process, 10 rounds of 32 concurrent
streaming clients with their own prompts. Every stream completes with content and `[DONE]`, nothing gets a 5xx, the 32
really are in flight at once (the server's peak count), the server's memory stays bounded, and it still answers after.
The rounds are driven by benchmarks/api_load.py's functions (the benchmark prints the same figures as JSON)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import httpx2 as httpx
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "api_load.py"
CLIENTS, ROUNDS, MAX_TOKENS = 32, 10, 8
# Resident memory of the server may grow by this much from the end of round 2 (the first round allocates the
# one-off buffers: generation workspaces, tokenizer caches, uvicorn's connection objects) to the end of round 10.
# Measured here (tiny model, 2 busy cores, benchmarks/api_load.py): +0.6 MiB over these 8 rounds / 256 requests,
# +2.6 MiB over 18 rounds, +5.2 MiB over 98 rounds / 3,136 requests (allocator warm-up: flat within ~1 MiB after
# round 25), round-to-round noise ~1.5 MiB. A leak of 64 KiB per request (a kept KV cache or prompt tensor, a
# per-request thread or queue never freed) would add 16 MiB here: the bound catches that with >10x margin over noise.
GROWTH_BOUND_MIB = 16


def _bench():
    spec = importlib.util.spec_from_file_location("api_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # a fresh process imports torch and loads the model; 320 streamed requests (~25 s here)
def test_10_rounds_of_32_concurrent_streams_complete_and_memory_stays_bounded(tiny_model_dir, tmp_path):
    bench = _bench()
    proc, base = bench.start_server(tiny_model_dir, tmp_path / "api.log")
    try:
        rss_loaded = bench.rss_mib(proc.pid)
        lines = []
        for n in range(1, ROUNDS + 1):
            records, line = bench.run_round(base, proc, n, CLIENTS, MAX_TOKENS)
            lines.append(line)
            bad = [r for r in records if bench.failed(r)]
            assert not bad, f"round {n}: {len(bad)} failed streams, e.g. {bad[0]}"
            assert all(r["status"] == 200 and r["done"] and r["content"] for r in records)
            assert all(0 < r["tokens"] <= MAX_TOKENS for r in records)  # the usage chunk came before [DONE]
            assert line["max_pending"] >= CLIENTS // 2, line  # in flight together, not one after another
        client = httpx.Client(timeout=60)
        body = {"model": "m", "messages": [{"role": "user", "content": "Still there?"}], "max_tokens": 4}
        after = client.post(base + "/v1/chat/completions", json=body)
        deadline = time.monotonic() + 10  # the worker counts a request done just after its last byte is sent
        while (health := client.get(base + "/health").json())["pending"] and time.monotonic() < deadline:
            time.sleep(0.05)
        client.close()
        assert proc.poll() is None, "the server died under load"
    finally:
        bench.stop_server(proc)

    print("\n".join(str(line) for line in lines))
    summary = bench.summary(lines, rss_loaded)
    print(summary)
    assert after.status_code == 200 and after.json()["choices"][0]["message"]["content"]
    assert health["status"] == "ok" and health["pending"] == 0  # nothing left queued or running
    assert rss_loaded > 100  # the RSS read is the server's own (torch + the model), not a stub's
    assert summary["requests"] == CLIENTS * ROUNDS and summary["errors"] == 0
    # the server's own peak (/health's peak_pending, reset each round): at some point (nearly) all 32 were queued
    # or running at once
    assert max(line["max_pending"] for line in lines) >= CLIENTS - 4, lines
    assert summary["rss_growth_mib"] < GROWTH_BOUND_MIB, summary
    assert summary["rss_peak_mib"] < rss_loaded + 4 * GROWTH_BOUND_MIB, summary  # no spike while 32 wait
