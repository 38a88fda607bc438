"""Throughput of the service side by side with its ceiling and a naive baseline, in one run.

Starts the servers itself on loopback, sends distinct texts (no cache can help), bounded in
requests and time, and prints one table plus the ratios. The load generator is a minimal
keep-alive HTTP/1.1 client on raw asyncio streams, because httpx would take more of the two
cores than the server does.

    .venv/bin/python benchmarks/serve_load.py                 # the whole table
    .venv/bin/python benchmarks/serve_load.py --quick         # fewer requests
    .venv/bin/python benchmarks/serve_load.py --workers 2 --threads 1
    .venv/bin/python benchmarks/serve_load.py --quick --skip-naive --image polarity:cpu

Rows: ``engine`` = the Predictor's own batch throughput (no HTTP), the ceiling;
``service`` = /api/v1/analyze at concurrency 1, 16, 64 for tweet- and review-length texts,
and /api/v1/analyze/batch; ``naive`` = a plain FastAPI endpoint calling the transformers
model in fp32 once per request, as tutorials do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

KEY = "bench-key"
WORDS = ("the a this that it was is really very quite not so too movie film phone battery "
         "screen food service staff price delivery story acting plot camera sound great good "
         "awful bad boring lovely terrible fine superb wonderful broken slow fast cheap "
         "expensive love hate enjoyed disappointed recommend avoid again never always").split()


def texts(n: int, words: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"#{seed}-{i} " + " ".join(rng.choice(WORDS, words - 1)) for i in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _request(reader, writer, path: str, body: bytes, port: int) -> tuple[int, bytes]:
    writer.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-API-Key: %s\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                 % (path.encode(), port, KEY.encode(), len(body), body))
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return status, await reader.readexactly(length)


async def load(port: int, path: str, bodies: list[bytes], concurrency: int,
               max_seconds: float) -> dict:
    """Send every body (or stop at max_seconds) over ``concurrency`` keep-alive connections."""
    latencies, errors, next_i = [], 0, 0
    deadline = time.perf_counter() + max_seconds

    async def connection():
        nonlocal errors, next_i
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while next_i < len(bodies) and time.perf_counter() < deadline:
            body = bodies[next_i]
            next_i += 1
            start = time.perf_counter()
            status, _ = await _request(reader, writer, path, body, port)
            latencies.append(time.perf_counter() - start)
            errors += status != 200
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*[connection() for _ in range(concurrency)])
    elapsed = time.perf_counter() - start
    lat = np.asarray(latencies) * 1000
    return {"requests": len(latencies), "errors": errors, "rps": len(latencies) / elapsed,
            "p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95)),
            "p99": float(np.percentile(lat, 99))}


def wait_healthy(url: str, proc: subprocess.Popen | None = None, seconds: float = 180
                 ) -> None:
    """Return once ``url`` answers 200; fail when ``proc`` exits or time runs out."""
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer 200 in {seconds:.0f} s")


def start(cmd: list[str], port: int, env: dict, health: str = "/api/v1/health"
          ) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_healthy(f"http://127.0.0.1:{port}{health}", proc)
    except SystemExit:
        proc.kill()
        raise
    return proc


def engine_rows(model: str, runtime: str, sets: dict, threads: int) -> list[dict]:
    from polarity.predictor import load_classifier

    predictor = load_classifier(model, runtime=runtime, threads=threads)
    rows = []
    for name, items in sets.items():
        predictor.predict(items[:64], batch_size=32)
        started = time.perf_counter()
        predictor.predict(items, batch_size=32)
        tps = len(items) / (time.perf_counter() - started)
        one = []
        for text in items[:200]:
            t0 = time.perf_counter()
            predictor.predict([text])
            one.append((time.perf_counter() - t0) * 1000)
        rows.append({"what": f"engine ({runtime}), batch 32 / batch 1", "texts": name,
                     "c": "-", "rps": tps, "p50": float(np.median(one)),
                     "p95": float(np.percentile(one, 95)), "p99": float(np.percentile(one, 99)),
                     "errors": 0, "requests": len(items)})
    return rows


def service_rows(port: int, label: str, sets: dict, max_seconds: float) -> list[dict]:
    """/api/v1/analyze at concurrency 1, 16 and 64 per text set, and /analyze/batch."""
    rows = []
    for name, items in sets.items():
        bodies = [json.dumps({"text": t, "include_reasoning": False}).encode() for t in items]
        asyncio.run(load(port, "/api/v1/analyze", bodies[:200], 16, 10))  # warm-up
        for c in (1, 16, 64):
            result = asyncio.run(load(port, "/api/v1/analyze", bodies, c, max_seconds))
            rows.append({"what": label, "texts": name, "c": c, **result})
    tweets = sets["tweet ~20 words"]
    batch_bodies = [json.dumps({"texts": tweets[i:i + 64]}).encode()
                    for i in range(0, len(tweets), 64)]
    result = asyncio.run(load(port, "/api/v1/analyze/batch", batch_bodies, 4, max_seconds))
    result["rps"] *= 64
    rows.append({"what": label.replace("/analyze", "/analyze/batch") + " (texts/s, 64 a "
                 "request)", "texts": "tweet ~20 words", "c": 4, **result})
    return rows


def container_rows(args, threads: int, sets: dict) -> list[dict]:
    """The same load against the image (``--image``), with its start-up time to healthy and
    its memory after the load."""
    port = free_port()
    started = time.perf_counter()
    cid = subprocess.run(["docker", "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:8000",
                          "-e", f"API_KEYS={KEY}", "-e", "RATE_LIMIT=100000000/hour",
                          "-e", f"THREADS={threads}", "-e", "LOG_LEVEL=warning",
                          "-e", f"MODEL_PATH={args.model}", args.image],
                         capture_output=True, text=True, check=True).stdout.strip()
    try:
        wait_healthy(f"http://127.0.0.1:{port}/api/v1/health/ready")
        ready = time.perf_counter() - started
        rows = service_rows(port, f"container /analyze ({args.image})", sets, args.max_seconds)
        memory = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}",
                                 cid], capture_output=True, text=True).stdout.strip()
        print(f"container {args.image}: healthy {ready:.1f} s after `docker run`; memory "
              f"after the load {memory}")
    finally:
        subprocess.run(["docker", "stop", "-t", "30", cid], capture_output=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--runtime", default="auto", help="auto, onnx or torch")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, help="model threads per worker")
    parser.add_argument("--requests", type=int, default=3000, help="per measurement")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="per measurement")
    parser.add_argument("--quick", action="store_true", help="600 requests, 8 s each")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--image", help="also load this Docker image the same way "
                        "(e.g. polarity:cpu from `make image`)")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.max_seconds = 600, 8.0
    cores = os.cpu_count() or 1
    threads = args.threads or max(1, cores // args.workers)
    sets = {"tweet ~20 words": texts(args.requests, 20, 1),
            "review ~60 words": texts(args.requests, 60, 2)}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "POLARITY_RUNTIME": args.runtime,
           "LOG_LEVEL": "warning", "TOKENIZERS_PARALLELISM": "false"}
    rows = engine_rows(args.model, args.runtime, sets, cores)

    port = free_port()
    server = start([sys.executable, "-m", "polarity", "serve", "--model", args.model,
                    "--port", str(port), "--rate-limit", "100000000/hour",
                    "--workers", str(args.workers), "--threads", str(threads),
                    "--log-level", "warning"], port,
                   # the key from the environment (a flag shows in ps); this run's limit is
                   # unreachable, so its workers may count it apart
                   {**env, "API_KEY": KEY, "ALLOW_UNSHARED_LIMITS": "true"})
    try:
        rows += service_rows(port, f"service /analyze ({args.workers}w x {threads}t)", sets,
                             args.max_seconds)
    finally:
        server.terminate()
        server.wait(timeout=60)
    if args.image:
        rows += container_rows(args, threads, sets)

    if not args.skip_naive:
        port = free_port()
        naive = start([sys.executable, str(Path(__file__).with_name("naive_app.py")),
                       str(port), args.model], port, env)
        try:
            bodies = [json.dumps({"text": t}).encode() for t in sets["tweet ~20 words"]]
            asyncio.run(load(port, "/api/v1/analyze", bodies[:50], 4, 10))
            for c in (1, 16, 64):
                result = asyncio.run(load(port, "/api/v1/analyze", bodies, c, args.max_seconds))
                rows.append({"what": "naive FastAPI + transformers fp32, one call a request",
                             "texts": "tweet ~20 words", "c": c, **result})
        finally:
            naive.terminate()
            naive.wait(timeout=60)

    print(f"\nmachine: {platform.processor() or platform.machine()}, {cores} cores; "
          f"model {args.model}, runtime {args.runtime}\n")
    print("| what | texts | concurrency | requests | errors | req/s (texts/s) | p50 ms | "
          "p95 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['what']} | {r['texts']} | {r['c']} | {r['requests']} | {r['errors']} | "
              f"{r['rps']:.0f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} |")

    def pick(what: str, texts_: str, c) -> float:
        return next((r["rps"] for r in rows if r["what"].startswith(what)
                     and r["texts"] == texts_ and r["c"] == c), float("nan"))

    tweet = "tweet ~20 words"
    service = pick("service /analyze", tweet, 64)
    print(f"\nservice / raw engine (tweets, c=64): {service / pick('engine', tweet, '-'):.2f}")
    if not args.skip_naive:
        print(f"service / naive baseline (tweets, c=64): {service / pick('naive', tweet, 64):.1f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
