"""The service under abuse, measured: each attack of docs/service.md ("Limits and failure
modes") against a live server on this machine, with what it answered and how long /health
took meanwhile.

    python benchmarks/abuse.py [--model default] [--connections 3000]
    python benchmarks/abuse.py --only fairness [--seconds 30]
    python benchmarks/abuse.py --only redis
    python benchmarks/abuse.py --only transport [--flood-mb 200]
    python benchmarks/abuse.py --only files

Starts ``polarity serve`` in a subprocess (default settings, two throwaway keys) and prints
a Markdown table, then the table of issue 34's transport probes (``abuse_transport.py``: its
own servers, ``--flood-mb`` MB floods). The emoji row needs the encoder (``default``), whose
emoji step turns each emoji into words; with ``vader`` it is a plain long text. ``--only
fairness``, ``--only redis`` and ``--only transport`` run those probes alone, on servers of
their own (:func:`fairness`, :func:`stopped_redis`, ``abuse_transport.rows``); ``--only
files`` runs ``polarity batch`` and ``polarity prepare`` on files built to break a reader, no
server (:func:`file_rows`).
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

import abuse_transport  # the same directory: issue 34's transport probes
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
    parser.add_argument("--only", choices=["fairness", "redis", "transport", "files"],
                        help="run one probe alone")
    parser.add_argument("--seconds", type=float, default=30, help="length of --only fairness")
    parser.add_argument("--flood-mb", type=int, default=200,
                        help="size of the trailer and pipelined-head floods (issue 34: 1 GB)")
    args = parser.parse_args()
    if args.only == "fairness":
        print_rows(fairness(args.model, args.seconds))
        return
    if args.only == "redis":
        print_rows(stopped_redis(args.model))
        return
    if args.only == "transport":
        print(abuse_transport.table(abuse_transport.rows(args.model, args.flood_mb)))
        return
    if args.only == "files":
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
    print_rows(rows)
    print()
    print(abuse_transport.table(abuse_transport.rows(args.model, args.flood_mb)))


def print_rows(rows) -> None:
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


def start_server(model: str, **env: str) -> tuple[subprocess.Popen, str]:
    """``polarity serve`` on a free port with ``env`` added; returns it once it is healthy."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "polarity", "serve"], env={
        **os.environ, "PORT": str(port), "MODEL_PATH": model, "LOG_LEVEL": "warning", **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                return server, base
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"the server at {base} did not become healthy")


#: A 10,000-character review (2,440 tokens for the default model: one call of 0.4 s alone).
LONG_REVIEW = ("The plot was slow at first but the acting carried it, and by the end I was "
               "moved. " * 200)[:10_000]


def fairness(model: str, seconds: float) -> list[tuple[str, str, str, str]]:
    """Issue 34 row 3: key A keeps 8 requests of 10,000-character texts in flight (within
    its quota) while key B sends "I love it": for the first half of ``seconds`` at random
    moments (Poisson, 4 a second, each sent whatever the others' state, so they land
    anywhere in A's model calls), for the second half back to back (each sent as the last
    is answered: B's answer ends a call, so the next one arrives as one of A's starts)."""
    import random
    import statistics

    server, base = start_server(model, API_KEYS=f"{KEY},{OTHER}", RATE_LIMIT="100000/hour")
    a, b = {"X-API-Key": KEY}, {"X-API-Key": OTHER}

    async def probe() -> tuple[list[float], list[float], list[float], int]:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            async def timed_b() -> float:
                started = time.perf_counter()
                r = await client.post("/api/v1/analyze", json={"text": "I love it"}, headers=b)
                assert r.status_code == 200, r.text
                return (time.perf_counter() - started) * 1000

            async def at_random(until: float) -> list[float]:
                sent = []
                while time.perf_counter() < until:
                    sent.append(asyncio.create_task(timed_b()))
                    await asyncio.sleep(random.expovariate(4))
                return list(await asyncio.gather(*sent))

            async def back_to_back(until: float) -> list[float]:
                out = [await timed_b()]
                while time.perf_counter() < until:
                    out.append(await timed_b())
                return out

            quiet = await at_random(time.perf_counter() + 3)
            until, done = time.perf_counter() + 1 + seconds, [0]

            async def flood() -> None:
                while time.perf_counter() < until:
                    r = await client.post("/api/v1/analyze", json={"text": LONG_REVIEW},
                                          headers=a)
                    assert r.status_code == 200, r.text
                    done[0] += 1

            flooding = [asyncio.create_task(flood()) for _ in range(8)]
            await asyncio.sleep(1)  # A's requests are queued
            randomly = await at_random(time.perf_counter() + seconds / 2)
            in_a_row = await back_to_back(until)
            await asyncio.gather(*flooding)
            return quiet, randomly, in_a_row, done[0]

    try:
        quiet, randomly, in_a_row, done = asyncio.run(probe())
    finally:
        server.terminate()
        server.wait(30)

    def spread(ms: list[float]) -> str:
        p90 = statistics.quantiles(ms, n=10, method="inclusive")[-1] if len(ms) > 1 else ms[0]
        return f"B p50 {statistics.median(ms):.0f} ms, p90 {p90:.0f} ms, max {max(ms):.0f} ms"

    flood = f"key A: 8 parallel 10,000-char texts ({done / (seconds + 1):.1f} texts/s)"
    return [("quiet: key B alone, 4 a second", f"{len(quiet)} x 200", spread(quiet), "-"),
            (f"{flood}; B at random moments", f"{len(randomly)} x 200", spread(randomly), "-"),
            (f"{flood}; B back to back", f"{len(in_a_row)} x 200", spread(in_a_row), "-")]


def stopped_redis(model: str, clients: int = 20, stopped_s: float = 10) -> list[tuple]:
    """Issue 34 row 4: Redis stopped (SIGSTOP) for ``stopped_s`` while ``clients`` clients
    of one key send requests back to back; the slowest answer, to be within
    REDIS_TIMEOUT_S (0.5 s) + 0.5 s."""
    import shutil
    import signal
    from collections import Counter

    if shutil.which("redis-server") is None:
        return [("Redis stopped", "skipped", "redis-server is not installed", "-")]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        redis_port = s.getsockname()[1]
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    server = None
    try:
        server, base = start_server(model, API_KEYS=KEY, REDIS_TIMEOUT_S="0.5",
                                    REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")

        async def load() -> list[tuple[int, float]]:
            out: list[tuple[int, float]] = []
            until = time.perf_counter() + stopped_s
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                async def one_client() -> None:
                    while time.perf_counter() < until:
                        started = time.perf_counter()
                        r = await client.post("/api/v1/analyze", json={"text": "good"},
                                              headers={"X-API-Key": KEY})
                        out.append((r.status_code, time.perf_counter() - started))

                os.kill(redis.pid, signal.SIGSTOP)
                try:
                    await asyncio.gather(*(one_client() for _ in range(clients)))
                finally:
                    os.kill(redis.pid, signal.SIGCONT)
            return out

        answers = asyncio.run(load())
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        os.kill(redis.pid, signal.SIGCONT)
        redis.terminate()
        redis.wait(10)
    codes = Counter(code for code, _ in answers)
    return [(f"Redis stopped {stopped_s:.0f} s, {clients} clients of one key",
             ", ".join(f"{n} x {c}" for c, n in sorted(codes.items())),
             f"slowest answer {max(t for _, t in answers):.2f} s (REDIS_TIMEOUT_S 0.5)",
             "-")]


if __name__ == "__main__":
    main()
