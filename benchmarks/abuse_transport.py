"""Issue 34's transport probes for benchmarks/abuse.py: chunked trailers and a pipelined head
flooding a worker's memory (rows 1-2), a deeply nested JSON body (row 9), idle connections
at the cap (row 12) and SIGTERM with two workers (row 18). Each row says what the server
answered, how long it took, how much the worker's RSS grew (its peak during the probe, Linux's
VmHWM, over its RSS before) and how long a plain request of another key took meanwhile.

    python benchmarks/abuse_transport.py [--model default] [--flood-mb 200]

(also run by ``benchmarks/abuse.py``). The floods are ``--flood-mb`` MB where the issue sent
1 GB: the refusal comes after the first 32 KB, so a larger flood only takes longer to send.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from statistics import median

import httpx

KEY, OTHER = "bench-key", "bench-key-2"
LINE = b"X-T: " + b"a" * 7993 + b"\r\n"  # 8,000 bytes, as in the issue
PLAIN = json.dumps({"text": "I love it"}).encode()


def start(model: str, port: int, log, **env) -> subprocess.Popen:
    environ = {**os.environ, "API_KEYS": f"{KEY},{OTHER}", "PORT": str(port),
               "MODEL_PATH": model, "LOG_LEVEL": "warning", "RATE_LIMIT": "1000000/hour", **env}
    server = subprocess.Popen([sys.executable, "-m", "polarity", "serve"], env=environ,
                              stdout=log, stderr=log)
    deadline = time.time() + 180
    while time.time() < deadline and server.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    log.seek(0)
    raise SystemExit(f"the server did not start (model {model}): "
                     f"{log.read()[-2000:].decode(errors='replace')}")


class Watch:
    """While a probe runs: the server's peak RSS (the kernel's high-water mark, VmHWM, reset
    when the probe starts: sampling missed peaks that lasted less than a sample) and the
    latency of a plain request of the other key, sent every 50 ms."""

    def __init__(self, pid: int, port: int):
        self.pid, self.port = pid, port
        self.base, self.peak, self.plain = 0, 0, []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._plain)]

    def _status(self, field: str) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            return int(f.read().split(f"{field}:")[1].split()[0]) * 1024

    def _start(self) -> None:
        with open(f"/proc/{self.pid}/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS
        self.base = self._status("VmRSS")

    def _end(self) -> None:
        self.peak = self._status("VmHWM")

    def _plain(self):
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60) as client:
            while True:  # at least one, sent as the probe starts
                started = time.perf_counter()
                try:
                    client.post("/api/v1/analyze", content=PLAIN, headers={
                        "X-API-Key": OTHER, "Content-Type": "application/json"})
                    self.plain.append((time.perf_counter() - started) * 1000)
                except httpx.HTTPError:
                    pass
                if self._stop.wait(0.05):
                    return

    def __enter__(self):
        self._start()
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join()
        self._end()

    def columns(self) -> tuple[str, str]:
        grown = max(0, self.peak - self.base) / 2**20
        plain = (f"p50 {median(self.plain):.0f} ms, max {max(self.plain):.0f} ms "
                 f"({len(self.plain)} requests)" if self.plain else "none answered")
        return f"{grown:.1f} MB", plain


def flood(port: int, first: bytes, total: int, then: bytes = b"\r\n") -> tuple[str, str]:
    """Sends ``first``, then ``total`` bytes of header lines, then ``then``, while reading
    every answer until the server closes. Returns the answers (each with the seconds it
    took) and how much of the flood the client got out."""
    started = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    sent = [0]

    def send():
        try:
            s.sendall(first)
            for _ in range(total // len(LINE)):
                s.sendall(LINE)
                sent[0] += len(LINE)
            s.sendall(then)
        except OSError:
            pass

    sender = threading.Thread(target=send)
    sender.start()
    answers = []
    try:
        while chunk := s.recv(65536):
            took = time.perf_counter() - started
            answers += [f"{code.decode()} after {took:.2f} s"
                        for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", chunk)]
    except OSError:
        pass
    sender.join()
    s.close()
    return (", then ".join(answers) or "(closed)",
            f"the client got {sent[0] / 2**20:.1f} of {total / 2**20:.0f} MB out")


def post(path: str, body: bytes, extra: str = "") -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Type: "
            f"application/json\r\n{extra}")
    if "chunked" in extra:  # one chunk, the last chunk; trailers follow
        return head.encode() + b"\r\n%x\r\n%s\r\n0\r\n" % (len(body), body)
    return head.encode() + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def trailers(port: int, megabytes: int) -> tuple[str, str]:
    body = b'{"text": "good"}'
    first = post("/api/v1/analyze", body, extra="Transfer-Encoding: chunked\r\n")
    return flood(port, first, megabytes << 20)


#: The slow request of the pipelining probe: two long texts (about 2 s here, as in the issue).
SLOW = json.dumps({"texts": ["a long and slow review " * 400] * 2}).encode()


def pipelined(port: int, megabytes: int) -> tuple[str, str]:
    first = post("/api/v1/analyze/batch", SLOW) + b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n"
    return flood(port, first, megabytes << 20)


def slow_alone(port: int) -> tuple[str, str]:
    """The pipelining probe's slow request without the flood: what it alone costs."""
    started = time.perf_counter()
    r = httpx.post(f"http://127.0.0.1:{port}/api/v1/analyze/batch", content=SLOW, timeout=120,
                   headers={"X-API-Key": KEY, "Content-Type": "application/json"})
    return f"{r.status_code} after {time.perf_counter() - started:.2f} s", "no flood (control)"


def warm_up(port: int) -> None:
    """The slow request once before the probes: the model's memory for long texts is then
    in place, and the RSS growth of the pipelining probe is the flood's."""
    httpx.post(f"http://127.0.0.1:{port}/api/v1/analyze/batch", content=SLOW, timeout=120,
               headers={"X-API-Key": KEY, "Content-Type": "application/json"})


def nested(port: int, log_path: str) -> tuple[str, str]:
    body = b"[" * 100_000 + b"]" * 100_000
    logged = os.path.getsize(log_path)
    codes = []
    started = time.perf_counter()
    for _ in range(50):  # a new connection each: a 500 used to close the connection
        try:
            codes.append(str(httpx.post(f"http://127.0.0.1:{port}/api/v1/analyze",
                                        content=body, timeout=60, headers={
                "X-API-Key": KEY, "Content-Type": "application/json"}).status_code))
        except httpx.HTTPError as exc:
            codes.append(type(exc).__name__)
    took = time.perf_counter() - started
    grown = os.path.getsize(log_path) - logged
    return (", ".join(f"{codes.count(c)} x {c}" for c in sorted(set(codes))),
            f"50 requests in {took:.2f} s; {grown:,} bytes of log")


def idle(port: int, count: int) -> tuple[str, str]:
    held = []
    try:
        for _ in range(count):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        time.sleep(0.5)
        answers = []
        for path in ("/api/v1/health/live", "/api/v1/health"):
            started = time.perf_counter()
            r = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=30)
            answers.append(f"{path.rsplit('/', 1)[1]} {r.status_code} in "
                           f"{(time.perf_counter() - started) * 1000:.0f} ms")
        return "; ".join(answers), f"{len(held)} idle connections held, no key"
    finally:
        for s in held:
            s.close()


def sigterm(port: int, log) -> tuple[str, str]:
    """Eight clients open a connection per request; SIGTERM to the supervisor after 1 s."""
    server = start("vader", port, log, WORKERS="2", ALLOW_UNSHARED_LIMITS="true")
    request = post("/api/v1/analyze", PLAIN, extra="Connection: close\r\n")
    outcomes, signalled = [], threading.Event()

    def one() -> str:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            return "refused"
        try:
            s.sendall(request)
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        except OSError:
            return "lost"
        finally:
            s.close()
        return "answered" if reply.startswith(b"HTTP/1.1 ") else "lost"

    def client(until: float):
        while time.time() < until:
            after = signalled.is_set()
            outcome = one()
            if after:
                outcomes.append(outcome)
            if outcome == "refused":
                time.sleep(0.01)

    with ThreadPoolExecutor(8) as pool:
        until = time.time() + 4
        for _ in range(8):
            pool.submit(client, until)
        time.sleep(1)
        signalled.set()
        started = time.perf_counter()
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        exited = time.perf_counter() - started
    counts = ", ".join(f"{outcomes.count(k)} {k}" for k in ("answered", "refused", "lost"))
    return counts, f"requests sent after SIGTERM; supervisor exited in {exited:.1f} s (code " \
                   f"{server.returncode})"


def rows(model: str, megabytes: int) -> list[tuple[str, ...]]:
    """Every probe, each flood on a fresh server (warmed up with the slow request): memory a
    process has freed stays in its heap and is reused, so a flood after another would show
    no growth at all."""
    from serve_load import free_port

    out = []
    with tempfile.NamedTemporaryFile(suffix=".log") as log:
        groups = [
            [(f"1. chunked trailers: {megabytes} MB of 8 KB lines after an authenticated POST",
              lambda port: trailers(port, megabytes))],
            [("2'. a batch of 2 long texts alone (the control of row 2)", slow_alone)],
            [(f"2. the same batch, then in the same stream a GET with {megabytes} MB of "
              "header lines", lambda port: pipelined(port, megabytes)),
             ("9. body '[' * 100000 + ']' * 100000, 50 times",
              lambda port: nested(port, log.name)),
             ("12. 2,100 idle connections without a key (MAX_CONNECTIONS 2048)",
              lambda port: idle(port, 2100))],
        ]
        for probes in groups:
            port = free_port()
            server = start(model, port, log)
            try:
                warm_up(port)
                for name, probe in probes:
                    with Watch(server.pid, port) as watch:
                        answer, detail = probe(port)
                    out.append((name, answer, detail, *watch.columns()))
            finally:
                server.terminate()
                server.wait(30)
        answer, detail = sigterm(free_port(), log)
        out.append(("18. SIGTERM with WORKERS=2 (vader), a new connection per request",
                    answer, detail, "-", "-"))
    return out


def table(found: list[tuple[str, ...]]) -> str:
    lines = ["| probe (issue 34) | answer | detail | RSS growth (peak) | plain request "
             "meanwhile |", "|---|---|---|---|---|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in found])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--flood-mb", type=int, default=200)
    args = parser.parse_args()
    print(table(rows(args.model, args.flood_mb)))


if __name__ == "__main__":
    main()
