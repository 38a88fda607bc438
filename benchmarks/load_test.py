"""Bounded load test of the service on loopback: zero errors, no lost request, flat memory.

Starts `polarity serve` itself (default model, a throw-away key), sends --requests distinct
texts at --concurrency, and prints one table. Loopback only; stops by itself.

    .venv/bin/python benchmarks/load_test.py --requests 3000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import httpx
import numpy as np
from serve_load import free_port  # the same directory: one way to start a server
from serve_load import start as start_server

WORDS = ("good great awful boring lovely terrible fine superb bad wonderful product movie "
         "service phone food staff quality price delivery screen").split()


def texts(n: int, words: int = 20) -> list[str]:
    rng = np.random.default_rng(0)
    return [f"{i} " + " ".join(rng.choice(WORDS, words)) for i in range(n)]


async def run(base: str, key: str, items: list[str], concurrency: int) -> tuple[list, list]:
    latencies, failures = [], []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for t in items:
        queue.put_nowait(t)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        async def worker():
            while not queue.empty():
                text = queue.get_nowait()
                start = time.perf_counter()
                try:
                    r = await client.post("/api/v1/analyze", headers={"X-API-Key": key},
                                          json={"text": text, "include_reasoning": False})
                    ok = r.status_code == 200 and r.json()["text"] == text
                except httpx.HTTPError as exc:
                    ok, r = False, exc
                latencies.append(time.perf_counter() - start)
                if not ok:
                    failures.append(getattr(r, "status_code", repr(r)))
        await asyncio.gather(*[worker() for _ in range(concurrency)])
    return latencies, failures


def rss_mb(base: str, key: str) -> float:
    """The worker's memory, from /health (shown with a valid key only)."""
    health = httpx.get(f"{base}/api/v1/health", headers={"X-API-Key": key}).json()
    return health["memory_usage"]["rss_mb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    port, key = free_port(), "load-test-key"
    env = {**os.environ, "API_KEY": key, "PORT": str(port), "MODEL_PATH": args.model,
           "RATE_LIMIT": "1000000/hour", "LOG_LEVEL": "warning", "HF_HUB_OFFLINE": "1"}
    server = start_server([sys.executable, "-m", "polarity", "serve"], port, env)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(run(base, key, texts(64), args.concurrency))  # warm-up
        rss_before = rss_mb(base, key)
        start = time.perf_counter()
        latencies, failures = asyncio.run(run(base, key, texts(args.requests),
                                              args.concurrency))
        elapsed = time.perf_counter() - start
        rss_after = rss_mb(base, key)
    finally:
        server.terminate()
        server.wait(timeout=60)
    lat = np.asarray(latencies) * 1000
    print("| requests | concurrency | errors | answered | req/s | p50 ms | p95 ms | p99 ms | "
          "RSS before MB | RSS after MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.requests} | {args.concurrency} | {len(failures)} | {len(latencies)} | "
          f"{args.requests / elapsed:.1f} | {np.percentile(lat, 50):.1f} | "
          f"{np.percentile(lat, 95):.1f} | {np.percentile(lat, 99):.1f} | {rss_before:.0f} | "
          f"{rss_after:.0f} |")
    if failures:
        print(f"failures (first 10): {failures[:10]}")
        sys.exit(1)


if __name__ == "__main__":
    main()
