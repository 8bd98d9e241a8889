"""The API under load: `python -m tuneforge api` in its own process, then rounds of N concurrent streaming chat
clients (each with its own prompt). One JSON line per round, then a summary line.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/api_load.py --clients 32 --rounds 10 --max-tokens 16
    ... --set infer_batch_size=1    # the server as before batching: one request at a time

Per round: `requests_per_s` (requests ÷ the round's wall time), `tokens_per_s` (completion tokens from each stream's
usage chunk ÷ wall time), `p50_ms` / `p95_ms` (request sent → `data: [DONE]`), `ttft_p50_ms` / `ttft_p95_ms` (request
sent → first content chunk), `max_pending` (the most requests queued or running on the server during the round:
/health's `peak_pending`, reset at the round's start; the clients really were concurrent), `rss_mib` (the server
process's resident memory after the round) and `rss_peak_mib` (the highest seen while polling), `errors` (status >= 400,
a stream without `[DONE]`, an error event or no content). The summary: totals, and `rss_growth_mib` from the end of
round 2 (after the first round's one-off allocations) to the end of the last round.

The model is generated offline by `tuneforge.model.tiny.create_tiny_model` (`--model tiny`: bench_data.py's `tiny`,
a 4-layer Qwen2), or `--model PATH` serves a model folder you have. `tests/integration/
test_api_load.py` uses this module's functions on the test suite's tiny model.
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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOPICS = ["rivers", "coffee", "winter", "music", "paper", "oceans", "gardens", "numbers", "cities", "letters"]


def rss_mib(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def start_server(model: Path, log_path: Path, port: int | None = None, timeout: float = 300.0, extra=()):
    """`python -m tuneforge api model_name_or_path=MODEL template=qwen` on 127.0.0.1 and a free port, one torch
    thread; returns (process, base url) once /health answers."""
    import httpx2 as httpx

    from tuneforge.api.server import free_port

    port = port or free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "tuneforge", "api", f"model_name_or_path={model}", "template=qwen", *extra]
    log = open(log_path, "wb")  # noqa: SIM115 (the server writes to it until it ends)
    proc = subprocess.Popen([*cmd, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout  # a fresh process on 2 busy shared cores can take a minute
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(base + "/health", timeout=5).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_server(proc)
    raise TimeoutError(f"the API server did not answer within {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")


def stop_server(proc) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def prompt(round_no: int, i: int) -> list[dict]:
    return [{"role": "user", "content": f"Round {round_no}, client {i}: tell me about {TOPICS[i % len(TOPICS)]}."}]


def one_stream(client, base: str, messages: list[dict], max_tokens: int) -> dict:
    """One streamed chat completion read as raw server-sent events: what came back, and when."""
    body = {
        "model": "tiny",
        "messages": messages,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    record = {"status": None, "done": False, "content": "", "tokens": 0, "error": None, "ttft": None}
    start = time.perf_counter()
    try:
        with client.stream("POST", base + "/v1/chat/completions", json=body) as response:
            record["status"] = response.status_code
            if response.status_code >= 400:
                record["error"] = response.read().decode(errors="replace")[:300]
            else:
                for line in response.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    data = line[6:]
                    if data == "[DONE]":
                        record["done"] = True
                        break
                    chunk = json.loads(data)
                    if "error" in chunk:
                        record["error"] = chunk["error"].get("message")
                        continue
                    if chunk.get("usage"):
                        record["tokens"] = chunk["usage"]["completion_tokens"]
                    for choice in chunk.get("choices", []):
                        text = choice.get("delta", {}).get("content") or ""
                        if text and record["ttft"] is None:
                            record["ttft"] = time.perf_counter() - start
                        record["content"] += text
    except Exception as exc:  # a dropped connection is a failure of this request, not of the benchmark
        record["error"] = f"{type(exc).__name__}: {exc}"
    record["latency"] = time.perf_counter() - start
    return record


def failed(record: dict) -> bool:
    return record["status"] != 200 or not record["done"] or bool(record["error"]) or not record["content"]


def run_round(base: str, proc, round_no: int, clients: int, max_tokens: int) -> tuple[list[dict], dict]:
    """`clients` streams at once (released together by a barrier) while a poller watches /health and the RSS."""
    import httpx2 as httpx

    limits = httpx.Limits(max_connections=clients + 1, max_keepalive_connections=clients + 1)
    seen = {"max_pending": 0, "rss_peak": rss_mib(proc.pid)}
    finished = threading.Event()
    barrier = threading.Barrier(clients)

    with httpx.Client(limits=limits, timeout=httpx.Timeout(300.0, connect=30.0)) as client:

        def poll():
            while not finished.wait(0.1):
                try:
                    pending = client.get(base + "/health").json()["pending"]
                    seen["max_pending"] = max(seen["max_pending"], pending)
                    seen["rss_peak"] = max(seen["rss_peak"], rss_mib(proc.pid))
                except Exception:  # noqa: S112 (the poller only observes; the streams report failures)
                    continue

        def one(i: int) -> dict:
            barrier.wait()
            return one_stream(client, base, prompt(round_no, i), max_tokens)

        client.get(base + "/health", params={"reset_peak": "true"})
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            records = list(pool.map(one, range(clients)))
        wall = time.perf_counter() - start
        finished.set()
        poller.join()
        # the server's own peak: polling every 0.1 s misses it when a batched round takes well under a second
        peak = client.get(base + "/health").json().get("peak_pending", 0)
        seen["max_pending"] = max(seen["max_pending"], peak)
    rss = rss_mib(proc.pid)
    return records, stats(round_no, records, wall, rss, seen)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0] * 1000, 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000, 1)


def stats(round_no: int, records: list[dict], wall: float, rss: float, seen: dict) -> dict:
    latencies = [r["latency"] for r in records]
    ttfts = [r["ttft"] for r in records if r["ttft"] is not None]
    return {
        "round": round_no,
        "clients": len(records),
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(records) / wall, 2),
        "tokens_per_s": round(sum(r["tokens"] for r in records) / wall, 1),
        "p50_ms": _pct(latencies, 50),
        "p95_ms": _pct(latencies, 95),
        "ttft_p50_ms": _pct(ttfts, 50),
        "ttft_p95_ms": _pct(ttfts, 95),
        "max_pending": seen["max_pending"],
        "rss_mib": round(rss, 1),
        "rss_peak_mib": round(max(seen["rss_peak"], rss), 1),
        "errors": sum(failed(r) for r in records),
    }


def summary(rounds: list[dict], rss_start: float) -> dict:
    base = rounds[1] if len(rounds) > 1 else rounds[0]
    requests = sum(r["clients"] for r in rounds)
    wall = sum(r["wall_s"] for r in rounds)
    return {
        "summary": "api_load",
        "rounds": len(rounds),
        "requests": requests,
        "errors": sum(r["errors"] for r in rounds),
        "requests_per_s": round(requests / wall, 2),
        "p50_ms_median": round(statistics.median(r["p50_ms"] for r in rounds), 1),
        "p95_ms_max": max(r["p95_ms"] for r in rounds),
        "ttft_p50_ms_median": round(statistics.median(r["ttft_p50_ms"] or 0 for r in rounds), 1),
        "rss_start_mib": round(rss_start, 1),
        "rss_after_round2_mib": base["rss_mib"],
        "rss_end_mib": rounds[-1]["rss_mib"],
        "rss_growth_mib": round(rounds[-1]["rss_mib"] - base["rss_mib"], 1),
        "rss_peak_mib": max(r["rss_peak_mib"] for r in rounds),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent streaming clients per round")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=16, help="max_tokens of each request")
    parser.add_argument("--model", default="tiny", help="'tiny' (generated offline) or a model folder")
    parser.add_argument("--work", help="keeps the generated model and the server log (default: a temp folder)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config key for the server, e.g. infer_batch_size=1 (one request at a time); repeatable",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(HERE))
    from machine import cpu_pressure

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.model == "tiny":
            from bench_data import build_model

            with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON lines (libraries log on it)
                model = build_model("tiny", work)
        else:
            model = Path(args.model)
        proc, base = start_server(model, work / "api-server.log", extra=args.set)
        try:
            rss_start = rss_mib(proc.pid)
            start = {"event": "start", "model": str(model), "server_keys": args.set, "rss_mib": round(rss_start, 1)}
            print(json.dumps(start), flush=True)
            rounds = []
            for n in range(1, args.rounds + 1):
                pressure = cpu_pressure()
                _, line = run_round(base, proc, n, args.clients, args.max_tokens)
                line["cpu_pressure"] = pressure
                rounds.append(line)
                print(json.dumps(line), flush=True)
            print(json.dumps(summary(rounds, rss_start)), flush=True)
        finally:
            stop_server(proc)
    return 1 if any(r["errors"] for r in rounds) else 0


if __name__ == "__main__":
    raise SystemExit(main())
