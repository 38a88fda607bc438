"""The cascade's accurate lane as a user meets it: the latency of one escalated request
(p50, p99), on an idle server and with fast traffic around it, in one run.

    .venv/bin/python benchmarks/escalation_latency.py [--requests 60] [--concurrency 8]

Starts ``polarity serve --model cascade`` on loopback. The texts are chosen with the
cascade's own rule before the server sees them (the fast stage's confidence against the
cascade's threshold, :func:`polarity.backends.cascade.needs_second`): SST-2 dev sentences the
fast tier is unsure of are the escalated requests, sent one at a time on their own
connection; unique tweet-length texts it is sure of are the fast traffic, sent over
``--concurrency`` keep-alive connections for as long as the escalated requests last. Every
text is sent once (no cache can help), and an escalated request counts only when its answer
says ``"escalation": "escalated"``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time

import numpy as np
from serve_load import KEY, _request, free_port, start, texts

DEV = "../shared/data/sst2/dev.tsv"


def split_by_route(candidates: list[str]) -> tuple[list[str], list[str]]:
    """(texts the cascade sends on, texts its fast stage answers), by the cascade's rule."""
    from polarity.backends.cascade import needs_second, stages_of
    from polarity.modelcard import read_card
    from polarity.predictor import load_classifier, resolve_model

    folder = resolve_model("cascade")
    first, _, threshold = stages_of(folder, read_card(folder))
    fast = load_classifier(first)
    p = [pred.scores["POSITIVE"] for pred in fast.predict(candidates)]
    hard = needs_second(p, threshold)
    return ([t for t, h in zip(candidates, hard, strict=True) if h],
            [t for t, h in zip(candidates, hard, strict=True) if not h])


async def escalated(port: int, bodies: list[bytes]) -> tuple[list[float], int]:
    """Each body alone on one connection: latencies (ms) of the escalated answers, and the
    count of answers that were not escalated or not 200."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    latencies, other = [], 0
    for body in bodies:
        started = time.perf_counter()
        status, answer = await _request(reader, writer, "/api/v1/analyze", body, port)
        ms = (time.perf_counter() - started) * 1000
        if status == 200 and json.loads(answer).get("escalation") == "escalated":
            latencies.append(ms)
        else:
            other += 1
    writer.close()
    return latencies, other


async def fast_traffic(port: int, bodies: list[bytes], concurrency: int,
                       stop: asyncio.Event) -> dict:
    """Fast requests over ``concurrency`` connections until ``stop``: req/s and latencies."""
    latencies, errors, next_i = [], 0, 0

    async def connection():
        nonlocal errors, next_i
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while not stop.is_set() and next_i < len(bodies):
            body = bodies[next_i]
            next_i += 1
            started = time.perf_counter()
            status, _ = await _request(reader, writer, "/api/v1/analyze", body, port)
            latencies.append((time.perf_counter() - started) * 1000)
            errors += status != 200
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*[connection() for _ in range(concurrency)])
    return {"requests": len(latencies), "errors": errors,
            "rps": len(latencies) / (time.perf_counter() - started),
            "p50": float(np.percentile(latencies, 50)), "p99": float(np.percentile(latencies, 99))}


async def with_traffic(port: int, hard: list[bytes], easy: list[bytes], concurrency: int
                       ) -> tuple[list[float], int, dict]:
    stop = asyncio.Event()
    background = asyncio.create_task(fast_traffic(port, easy, concurrency, stop))
    await asyncio.sleep(1.0)  # the fast traffic at its pace before the first hard text
    latencies, other = await escalated(port, hard)
    stop.set()
    return latencies, other, await background


def percentiles(ms: list[float]) -> str:
    return (f"{np.percentile(ms, 50):.0f} | {np.percentile(ms, 99):.0f}" if ms else "- | -")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-file", default=DEV, help="where the escalated texts come from")
    parser.add_argument("--requests", type=int, default=60,
                        help="escalated requests in each phase")
    parser.add_argument("--concurrency", type=int, default=8, help="fast traffic connections")
    parser.add_argument("--threads", type=int, default=None, help="model threads")
    args = parser.parse_args()
    from polarity.evaluate.data import load_test_set

    hard, _ = split_by_route(load_test_set(args.test_file).texts)
    _, easy = split_by_route(texts(6000, 20, 7))
    if len(hard) < 2 * args.requests:
        raise SystemExit(f"{len(hard)} texts of {args.test_file} escalate; "
                         f"{2 * args.requests} needed (lower --requests)")
    bodies = [json.dumps({"text": t}).encode() for t in hard[:2 * args.requests]]
    easy_bodies = [json.dumps({"text": t}).encode() for t in easy]
    port = free_port()
    threads = args.threads or os.cpu_count() or 1
    # the key from the environment (the service refuses it as a flag, which ps shows)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LOG_LEVEL": "warning",
           "TOKENIZERS_PARALLELISM": "false", "API_KEY": KEY}
    server = start([sys.executable, "-m", "polarity", "serve", "--model", "cascade",
                    "--port", str(port), "--rate-limit", "100000000/hour",
                    "--threads", str(threads), "--log-level", "warning"], port, env)
    try:
        asyncio.run(escalated(port, bodies[:2]))  # warm-up: both lanes' first calls
        idle, idle_other = asyncio.run(escalated(port, bodies[:args.requests]))
        busy, busy_other, fast = asyncio.run(with_traffic(
            port, bodies[args.requests:], easy_bodies, args.concurrency))
    finally:
        server.terminate()
        server.wait(30)
    print(f"{len(hard)} escalating texts found; fast traffic: {fast['requests']} requests, "
          f"{fast['errors']} errors; answers not escalated: {idle_other + busy_other}")
    print("| escalated request | n | p50 ms | p99 ms | fast traffic req/s | fast p50 ms | "
          "fast p99 ms |")
    print("|---|---|---|---|---|---|---|")
    print(f"| alone on the server | {len(idle)} | {percentiles(idle)} | - | - | - |")
    print(f"| with fast traffic at concurrency {args.concurrency} | {len(busy)} | "
          f"{percentiles(busy)} | {fast['rps']:.0f} | {fast['p50']:.0f} | {fast['p99']:.0f} |")


if __name__ == "__main__":
    main()
