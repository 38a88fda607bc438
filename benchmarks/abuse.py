"""The service under abuse, measured: each attack of docs/service.md ("Limits and failure
modes") against a live server on this machine, with what it answered and how long /health
took meanwhile.

    python benchmarks/abuse.py [--model vader] [--connections 3000]

Starts ``polarity serve`` in a subprocess (default settings, a throwaway key) and prints a
Markdown table. The model only matters for the reasoning row (vader gives reasons cheaply;
use --model default for the encoder's occlusion reasons).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time

import httpx

KEY = "bench-key"


def health_ms(base: str) -> float:
    started = time.perf_counter()
    httpx.get(f"{base}/api/v1/health", timeout=30)
    return (time.perf_counter() - started) * 1000


def raw(port: int, data: bytes, read_timeout: float = 30) -> tuple[bytes, float]:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the client finished sending: the answer is still there
        try:
            reply = s.recv(200)
        except (TimeoutError, ConnectionResetError):
            reply = b""
    return reply, time.perf_counter() - started


def status_line(reply: bytes) -> str:
    return reply.split(b"\r\n", 1)[0].decode(errors="replace") or "(closed)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vader")
    parser.add_argument("--connections", type=int, default=3000)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "API_KEY": KEY, "PORT": str(port), "MODEL_PATH": args.model,
           "LOG_LEVEL": "warning", "RATE_LIMIT": "40/hour", "MAX_QUEUE": "2",
           "MAX_CONNECTIONS": str(args.connections // 2)}
    log = tempfile.TemporaryFile()
    server = subprocess.Popen([sys.executable, "-m", "polarity", "serve"], env=env,
                              stdout=log, stderr=log)
    rows = []
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        quiet = health_ms(base)
        rows.append(("quiet server", "GET /health", "200", f"{quiet:.1f}"))

        head = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * (64 << 20)
        reply, took = raw(port, head + b"\r\n\r\n")
        rows.append(("64 MB header, no key", status_line(reply), f"{took:.2f} s",
                     f"{health_ms(base):.1f}"))

        reply, took = raw(port, b"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\nX-API-Key: "
                          + KEY.encode() + b"\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 100\r\n\r\n{\"text\": ")
        rows.append(("body shorter than Content-Length", status_line(reply),
                     f"closed after {took:.1f} s", f"{health_ms(base):.1f}"))

        reply, took = raw(port, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
        rows.append(("head never finished", status_line(reply), f"after {took:.1f} s",
                     f"{health_ms(base):.1f}"))

        held = []
        for _ in range(args.connections):
            try:
                held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                break
        try:
            reply, _ = raw(port, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            rows.append((f"{len(held)} idle connections held", status_line(reply),
                         "new request", "-"))
        finally:
            for s in held:
                s.close()
        time.sleep(1)
        rows.append(("after they close", "GET /health", "200", f"{health_ms(base):.1f}"))

        codes = asyncio.run(_burst(base, 40))
        after = httpx.post(f"{base}/api/v1/analyze", json={"text": "good"},
                           headers={"X-API-Key": KEY})
        rows.append(("40 at once, RATE_LIMIT 40/hour, MAX_QUEUE 2",
                     f"{codes.count(200)} x 200, {codes.count(503)} x 503",
                     f"next request {after.status_code}, remaining "
                     f"{after.headers.get('X-RateLimit-Remaining')}", "-"))
        big = httpx.post(f"{base}/api/v1/analyze/batch", json={"texts": ["good"] * 41},
                         headers={"X-API-Key": KEY})
        rows.append(("batch of 41 texts, limit 40/hour", str(big.status_code),
                     big.json()["error"]["type"], "-"))
        bad = httpx.post(f"{base}/api/v1/analyze", content=b"{not json",
                         headers={"Content-Type": "application/json"})
        rows.append(("invalid JSON without a key", str(bad.status_code), "key checked first",
                     "-"))
    finally:
        server.terminate()
        server.wait(30)
    print("| attack | answer | detail | /health ms meanwhile |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


async def _burst(base: str, n: int) -> list[int]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        responses = await asyncio.gather(*[client.post(
            "/api/v1/analyze", json={"text": f"good {i}"}, headers={"X-API-Key": KEY})
            for i in range(n)])
    return [r.status_code for r in responses]


if __name__ == "__main__":
    main()
