"""The service under abuse, measured: each attack of docs/service.md ("Limits and failure
modes") against a live server on this machine, with what it answered and how long /health
took meanwhile.

    python benchmarks/abuse.py [--model default] [--connections 3000] [--files-only]

Starts ``polarity serve`` in a subprocess (default settings, two throwaway keys) and prints
a Markdown table; then runs ``polarity batch`` and ``polarity prepare`` on files built to break
a reader (:func:`file_rows`; ``--files-only`` runs just those, no server). The emoji row
needs the encoder (``default``), whose emoji step turns each emoji into words; with
``vader`` it is a plain long text.
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
OTHER = "bench-key-2"  # the rows before the rate-limit burst, on a quota of their own


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
    parser.add_argument("--model", default="default")
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--files-only", action="store_true",
                        help="only the batch and prepare probes (no server)")
    args = parser.parse_args()
    if args.files_only:
        print_rows(file_rows())
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "API_KEYS": f"{KEY},{OTHER}", "PORT": str(port), "MODEL_PATH": args.model,
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

        rows += work_rows(base, port)

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
        rows.append(("batch of 41 texts (texts per request: the least of MAX_BATCH_ITEMS, "
                     "MAX_QUEUE 2 and the rate limit)", str(big.status_code),
                     big.json()["error"]["type"], "-"))
        bad = httpx.post(f"{base}/api/v1/analyze", content=b"{not json",
                         headers={"Content-Type": "application/json"})
        rows.append(("invalid JSON without a key", str(bad.status_code), "key checked first",
                     "-"))
    finally:
        server.terminate()
        server.wait(30)
    print_rows(rows + file_rows())


def print_rows(rows: list[tuple[str, str, str, str]]) -> None:
    print("| attack | answer | detail | /health ms meanwhile |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def timed(call) -> tuple[object, float]:
    started = time.perf_counter()
    out = call()
    return out, time.perf_counter() - started


def while_busy(base: str, call) -> tuple[object, float, float]:
    """``call``'s answer and seconds, and how long a plain request of the other key took
    while it ran (sent 0.2 s after it)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        busy = pool.submit(timed, call)
        time.sleep(0.2)
        plain = pool.submit(timed, lambda: httpx.post(
            f"{base}/api/v1/analyze", json={"text": "a plain request"},
            headers={"X-API-Key": OTHER}, timeout=120))
        (answer, took), (_, waited) = busy.result(), plain.result()
    return answer, took, waited


def one_write(port: int, body: bytes) -> str:
    """A POST whose head and body go out in one write (as most clients send them)."""
    head = (f"POST /api/v1/analyze/batch HTTP/1.1\r\nHost: x\r\nX-API-Key: {OTHER}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    return status_line(raw(port, head + body)[0])


def work_rows(base: str, port: int) -> list[tuple[str, str, str, str]]:
    """Issue 23's items 1, 2, 6 and 7: work bound, bodies in one write, large invalid
    bodies, and the body deadline."""
    rows = []
    post = lambda body: httpx.post(f"{base}/api/v1/analyze", json=body,  # noqa: E731
                                   headers={"X-API-Key": OTHER}, timeout=120)
    answer, took, waited = while_busy(base, lambda: post({"text": "\U0001fae2" * 10000}))
    rows.append(('"🫢" x 10000 (80,000 tokens after the emoji step)', str(answer.status_code),
                 f"{answer.json()['error']['type']} in {took:.2f} s; a plain request "
                 f"meanwhile {waited:.2f} s", f"{health_ms(base):.1f}"))
    for size in (40_000, 1_000_000, 1_999_000):
        body = b'{"texts": ["good", "bad"]}'
        rows.append((f"valid {size // 1000} KB batch body, head and body in one write",
                     one_write(port, body + b" " * (size - len(body))), "", "-"))
    junk = b"{" + b",".join(b'"k%d": 0' % i for i in range(150_000)) + b"}"
    answer, took, waited = while_busy(base, lambda: httpx.post(
        f"{base}/api/v1/analyze", content=junk, timeout=120, headers={
            "X-API-Key": OTHER, "Content-Type": "application/json"}))
    rows.append((f"{len(junk) / 1e6:.2f} MB object of 150k unknown keys",
                 str(answer.status_code), f"refused in {took:.2f} s; a plain request "
                 f"meanwhile {waited:.2f} s", f"{health_ms(base):.1f}"))
    rows.append(("one body byte every 2 s", *slow_body(port), f"{health_ms(base):.1f}"))
    return rows


def slow_body(port: int) -> tuple[str, str]:
    """Sends a 100-byte body one byte every 2 s (each under the idle timeout): the whole
    body's deadline (BODY_TIMEOUT_S) ends it."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(f"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\nX-API-Key: {OTHER}\r\n"
                  "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n".encode())
        reply = b""
        for _ in range(100):
            try:
                s.sendall(b" ")
                s.settimeout(2)
                reply = s.recv(200)
                if reply or time.perf_counter() - started > 60:
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if not reply:
                break  # closed
    return status_line(reply), f"ended after {time.perf_counter() - started:.1f} s"


async def _burst(base: str, n: int) -> list[int]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        responses = await asyncio.gather(*[client.post(
            "/api/v1/analyze", json={"text": f"good {i}"}, headers={"X-API-Key": KEY})
            for i in range(n)])
    return [r.status_code for r in responses]


def run_cli(*args: str) -> tuple[int, float, float, str]:
    """``polarity ARGS`` in its own process: exit status, seconds, peak RSS in MB (of that
    process alone: wait4) and the last line it wrote to stderr."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "polarity", *args],
                                stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        last = (err.read().decode(errors="replace").strip().splitlines() or [""])[-1]
    return proc.returncode, time.perf_counter() - started, usage.ru_maxrss / 1024, last


def batch_outcome(out) -> str:
    import pyarrow.parquet as pq

    scored = sum(pq.ParquetFile(p).metadata.num_rows for p in out.glob("part-*.parquet"))
    errors = out / "_errors.jsonl"
    reported = len(errors.read_bytes().splitlines()) if errors.is_file() else 0
    leftovers = [p.name for p in out.rglob(".*")]
    return f"{scored} scored, {reported} in _errors.jsonl, temporary files left: {leftovers}"


def file_rows() -> list[tuple[str, str, str, str]]:
    """Issue 34's rows 7, 8 and 13, each in its own process on `--model vader` (the attack is
    on the reader, not the model): what it answered, its time and peak RSS."""
    import gzip
    import json
    from pathlib import Path

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        good = [json.dumps({"text": f"a distinct fine review {i}", "label": i % 2})
                for i in range(40)]

        def batch(name: str, data: bytes, *extra: str) -> tuple[int, float, float, str]:
            (work / name).write_bytes(data)
            return run_cli("batch", "--model", "vader", "--input", str(work / name),
                           "--output", str(work / f"out-{name}"), "--no-progress", *extra)

        deep = b'{"text": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        code, took, rss, _ = batch("deep.jsonl", b"\n".join([good[0].encode(), deep,
                                                              good[1].encode()]) + b"\n")
        rows.append(("batch: a JSONL line nested 100,000 deep", f"exit {code}, "
                     + batch_outcome(work / "out-deep.jsonl"), f"{took:.1f} s, peak RSS "
                     f"{rss:.0f} MB", "-"))
        field = b'id,text\n0,good\n1,"' + b"x" * (10 << 20) + b'"\n2,bad\n'
        code, took, rss, _ = batch("field.csv", field)
        rows.append(("batch: a 10 MB CSV field", f"exit {code}, "
                     + batch_outcome(work / "out-field.csv"), f"{took:.1f} s, peak RSS "
                     f"{rss:.0f} MB", "-"))

        def prepare(name: str) -> str:
            code, took, rss, last = run_cli("prepare", "--source", f"jsonl:{work / name}",
                                            "--output-dir", str(work / f"prep-{name}"))
            stats = work / f"prep-{name}" / "stats.json"
            dropped = json.loads(stats.read_text())["dropped"] if stats.is_file() else last
            left = sorted(p.name for p in (work / f"prep-{name}").iterdir())
            return f"exit {code}, dropped {dropped}, files {left}", f"{took:.1f} s, peak " \
                f"RSS {rss:.0f} MB"

        with open(work / "line.jsonl", "wb") as f:  # a 1 GB line among good ones
            f.write(("\n".join(good[:20]) + "\n").encode() + b'{"text": "')
            for _ in range(1024):
                f.write(b"a" * (1 << 20))
            f.write(('", "label": 1}\n' + "\n".join(good[20:]) + "\n").encode())
        rows.append(("prepare: a 1 GB line", *prepare("line.jsonl"), "-"))
        (work / "line.jsonl").unlink()
        with gzip.open(work / "bomb.jsonl.gz", "wb") as f:  # 2 GB in about 2 MB
            f.write(("\n".join(good[:20]) + "\n").encode() + b'{"text": "')
            for _ in range(2048):
                f.write(b"a" * (1 << 20))
            f.write(('", "label": 1}\n' + "\n".join(good[20:]) + "\n").encode())
        size = (work / "bomb.jsonl.gz").stat().st_size / 1e6
        rows.append((f"prepare: a {size:.1f} MB gzip bomb (2 GB line)",
                     *prepare("bomb.jsonl.gz"), "-"))

        texts = "".join(line + "\n" for line in good)
        batch("changed.jsonl", texts.encode())
        changed = texts.replace("review 7", "review seven")
        code, _, _, last = batch("changed.jsonl", changed.encode())
        again, _, _, _ = batch("changed.jsonl", changed.encode(), "--restart")
        rows.append(("batch rerun after the input's content changed (same path, same rows)",
                     f"exit {code}: {last}", f"with --restart: exit {again}", "-"))
    return rows


if __name__ == "__main__":
    main()
