"""The guarded HTTP protocol on a live server: a huge head gets 431, a head or body that
never completes is cut off, too many connections get 503, and /health stays quick."""

import socket
import threading
import time

import httpx
import pytest
import uvicorn
from serve_helpers import KEY, WordCounter, free_port, wait_for_server

from polarity.serve.app import create_app
from polarity.serve.run import server_config
from polarity.serve.settings import Settings

pytest.importorskip("httptools")


@pytest.fixture(scope="module")
def base():
    settings = Settings(api_key=KEY, port=free_port(), max_header_bytes=4096,
                        rate_limit="100000/hour",
                        header_timeout_s=0.5, body_timeout_s=0.5, max_connections=20,
                        log_level="warning")
    server = uvicorn.Server(server_config(create_app(settings, predictor=WordCounter()),
                                          settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{settings.port}"
    wait_for_server(url)
    yield url, settings.port
    server.should_exit = True
    thread.join(10)


def raw(port: int, data: bytes, wait: float = 0.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        time.sleep(wait)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
        return b"".join(chunks)


def test_a_huge_head_is_refused_with_431(base):
    _, port = base
    head = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * 200_000 + b"\r\n\r\n"
    assert raw(port, head).startswith(b"HTTP/1.1 431")


def test_a_head_that_never_ends_gets_408(base):
    url, port = base
    started = time.perf_counter()
    reply = raw(port, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
    assert reply.startswith(b"HTTP/1.1 408") and time.perf_counter() - started < 3
    assert httpx.get(f"{url}/api/v1/health").status_code == 200


def test_a_body_shorter_than_its_length_is_cut_off(base):
    _, port = base
    started = time.perf_counter()
    raw(port, b"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"X-API-Key: " + KEY.encode() + b"\r\nContent-Length: 100\r\n\r\n{\"text\": ")
    assert time.perf_counter() - started < 3  # closed after the 0.5 s idle deadline


def test_connections_over_the_cap_get_503_and_health_stays_quick(base):
    url, port = base
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(25)]
    try:
        for s in held:
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")  # heads left open
        time.sleep(0.1)
        reply = raw(port, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 503")
    finally:
        for s in held:
            s.close()
    time.sleep(0.2)
    started = time.perf_counter()
    assert httpx.get(f"{url}/api/v1/health").status_code == 200
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("size", [40_000, 1_000_000, 1_990_000])
def test_a_body_sent_in_one_write_with_its_head_is_not_counted_as_head(base, size):
    import json

    _, port = base
    n = 256 if size > 1_000_000 else 128
    text = "good " * ((size // n - 8) // 5)
    body = json.dumps({"texts": [text] * n}).encode()
    assert size * 0.9 < len(body) <= 2_000_000
    head = (f"POST /api/v1/analyze/batch HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    reply = raw(port, head + body)  # one write: head and body arrive in the same reads
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]


def test_a_body_that_trickles_in_is_cut_off_at_the_body_deadline(base):
    _, port = base
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/json\r\nX-API-Key: " + KEY.encode() +
                  b"\r\nContent-Length: 1000\r\n\r\n")
        closed = False
        for _ in range(40):  # a byte every 0.1 s re-armed the old idle timer for ever
            try:
                s.sendall(b" ")
                time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        if not closed:
            s.settimeout(1)
            try:
                closed = s.recv(100) == b""
            except (ConnectionResetError, TimeoutError):
                closed = True
    assert closed and time.perf_counter() - started < 3
