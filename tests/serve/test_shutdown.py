"""SIGTERM lets requests in flight finish before the process exits."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from serve_helpers import KEY, free_port, wait_for_server

SERVER = """
import sys, uvicorn
sys.path.insert(0, {here!r})
from serve_helpers import WordCounter
from polarity.serve.app import create_app
from polarity.serve.settings import Settings
app = create_app(Settings(api_key={key!r}, max_wait_ms=5), predictor=WordCounter(delay=2.0))
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning",
            timeout_graceful_shutdown=30)
"""


def test_sigterm_finishes_requests_in_flight(tmp_path):
    port = free_port()
    script = SERVER.format(here=str(Path(__file__).parent), key=KEY, port=port)
    proc = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy())
    base = f"http://127.0.0.1:{port}"
    wait_for_server(base, proc)
    results = []

    def call(i):
        try:
            r = httpx.post(f"{base}/api/v1/analyze", json={"text": f"good {i}"},
                           headers={"X-API-Key": KEY}, timeout=30)
            results.append(r.status_code)
        except httpx.HTTPError as exc:
            results.append(repr(exc))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # the requests are now waiting on the 2-second model call
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join()
    proc.wait(timeout=30)
    assert results == [200] * 6
    # uvicorn re-raises SIGTERM after its graceful shutdown, as a killed process would
    assert proc.returncode in (0, -signal.SIGTERM)


def test_sigterm_with_two_workers_answers_every_connection_before_closing():
    """64 keep-alive connections under load; SIGTERM to the supervisor: every request sent
    gets its answer, the last one on each connection says `connection: close`, none is
    reset."""
    import asyncio
    import json

    port = free_port()
    env = {**os.environ, "API_KEY": KEY, "MODEL_PATH": "vader", "PORT": str(port),
           "WORKERS": "2", "LOG_LEVEL": "warning", "RATE_LIMIT": "1000000/hour",
           "ALLOW_UNSHARED_LIMITS": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "polarity", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_server(f"http://127.0.0.1:{port}", proc)
    counts = {"answered": 0, "closed_after_answer": 0, "reset": 0, "errors": 0}
    body = json.dumps({"text": "good day"}).encode()
    request = (b"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nContent-Type: "
               b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (KEY.encode(), len(body),
                                                                     body))

    async def connection(deadline):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.time() < deadline:
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError, OSError):
                counts["reset"] += 1
                return
            counts["answered"] += 1
            counts["errors"] += not head.startswith(b"HTTP/1.1 200")
            if b"connection: close" in head.lower():
                counts["closed_after_answer"] += 1
                return

    async def scenario():
        tasks = [asyncio.create_task(connection(time.time() + 4)) for _ in range(64)]
        await asyncio.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
    proc.wait(timeout=60)
    assert counts["reset"] == 0 and counts["errors"] == 0, counts
    assert counts["closed_after_answer"] == 64 and counts["answered"] > 64
    assert proc.returncode == 0


def test_sigterm_with_two_workers_leaves_no_new_connection_unanswered():
    """Eight clients open a new connection per request before and after SIGTERM to the
    supervisor: each request is answered, or its connection refused (the client knows it was
    not sent); none is reset after being accepted. uvicorn's supervisor kept the listening
    socket open through the drain, and 8 of 8 connections opened then were reset."""
    import json
    import socket

    port = free_port()
    env = {**os.environ, "API_KEY": KEY, "MODEL_PATH": "vader", "PORT": str(port),
           "WORKERS": "2", "LOG_LEVEL": "warning", "RATE_LIMIT": "1000000/hour",
           "ALLOW_UNSHARED_LIMITS": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "polarity", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_server(f"http://127.0.0.1:{port}", proc)
    body = json.dumps({"text": "good day"}).encode()
    request = (b"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nContent-Type: "
               b"application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
               % (KEY.encode(), len(body), body))
    outcomes: list[tuple[str, bool]] = []
    signalled = threading.Event()

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
        except OSError as exc:
            return f"lost ({type(exc).__name__})"
        finally:
            s.close()
        return "answered" if reply.startswith(b"HTTP/1.1 200") else f"lost ({reply[:20]!r})"

    def client(until: float) -> None:
        while time.time() < until:
            after = signalled.is_set()
            outcome = one()
            outcomes.append((outcome, after))
            if outcome == "refused":
                time.sleep(0.01)

    until = time.time() + 4
    clients = [threading.Thread(target=client, args=(until,)) for _ in range(8)]
    for t in clients:
        t.start()
    time.sleep(1.0)
    signalled.set()
    proc.send_signal(signal.SIGTERM)
    for t in clients:
        t.join()
    proc.wait(timeout=60)
    lost = [o for o, _ in outcomes if o.startswith("lost")]
    assert not lost, lost
    assert ("answered", True) in outcomes and ("refused", True) in outcomes
    assert proc.returncode == 0
