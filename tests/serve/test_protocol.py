"""The guarded HTTP protocol on a live server: a huge head, trailers or pipelined heads get
431, a head or body that never completes is cut off, and /health stays quick."""

import re
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

MODEL = WordCounter()  # the fixture server's model: a test may slow it down


@pytest.fixture(scope="module")
def base():
    settings = Settings(api_key=KEY, port=free_port(), max_header_bytes=4096,
                        rate_limit="100000/hour",
                        header_timeout_s=0.5, body_timeout_s=0.5, max_connections=20,
                        log_level="warning")
    server = uvicorn.Server(server_config(create_app(settings, predictor=MODEL), settings))
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


def test_heads_left_open_over_the_cap_make_room_and_health_stays_quick(base):
    """25 heads left open against a cap of 20: the request closes the oldest (503 to it;
    tests/serve/test_connections.py) instead of getting 503 itself."""
    url, port = base
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(25)]
    try:
        for s in held:
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")  # heads left open
        time.sleep(0.1)
        reply = raw(port, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close"
                          b"\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 200")
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


def peak_rss_reset() -> int | None:
    """Resets this process's peak RSS (the server runs in a thread of it); returns it, KB, or
    None where the kernel does not allow it (the answers are checked all the same)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    return peak_rss()


def peak_rss() -> int:
    with open("/proc/self/status") as f:
        return int(f.read().split("VmHWM:")[1].split()[0])


def flood(port: int, first: bytes, line: bytes, total: int, then: bytes = b""):
    """Sends ``first``, then ``line`` until ``total`` bytes, then ``then``, from a thread,
    while this one reads every answer until the server closes. Returns the answers and
    whether the server took all of it."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    sent = {"all": False}

    def send():
        try:
            s.sendall(first)
            for _ in range(total // len(line)):
                s.sendall(line)
            s.sendall(then)
            sent["all"] = True
        except OSError:  # refused and closed before the client finished
            pass

    sender = threading.Thread(target=send)
    sender.start()
    chunks = []
    try:
        while chunk := s.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, TimeoutError):
        pass
    sender.join(30)
    s.close()
    return b"".join(chunks), sent["all"]


def statuses(reply: bytes) -> list[str]:
    return [m.decode() for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", reply)]


TRAILER = b"X-T: " + b"a" * 7993 + b"\r\n"  # 8,000 bytes, as in the issue


def test_chunked_trailers_count_against_the_head_limit(base):
    """One authenticated POST, then 20 MB of trailer lines: the head counter used to stop at
    the first head, so every trailer was kept (1 GB took a worker's RSS up by 965 MB)."""
    _, port = base
    body = b'{"text": "good"}'
    head = (f"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    first = head + b"%x\r\n%s\r\n0\r\n" % (len(body), body)
    before = peak_rss_reset()
    reply, took_all = flood(port, first, TRAILER, 20 << 20, b"\r\n")
    assert statuses(reply) == ["431"] and not took_all, reply[:300]
    assert before is None or peak_rss() - before < 10_000  # KB; the trailers were 20 MB


def test_trailers_within_the_limit_are_accepted_and_dropped(base):
    _, port = base
    body = b'{"text": "good"}'
    request = (f"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
               "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
               "Connection: close\r\n\r\n").encode()
    request += b"%x\r\n%s\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n" % (len(body), body)
    reply = raw(port, request)
    assert reply.startswith(b"HTTP/1.1 200") and b"POSITIVE" in reply


def test_a_pipelined_head_counts_against_the_limit_and_answers_stay_in_order(base):
    """A slow request, then in the same stream a GET with 20 MB of header lines: the flood
    used to be read whole while the first request ran (1 GB: RSS peak 1.9 GB). Now the
    first request gets its 200, then the GET its 431, then the connection closes."""
    _, port = base
    body = b'{"text": "good"}'
    first = (f"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
             f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
             ).encode() + body + b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n"
    MODEL.delay = 1.0
    try:
        before = peak_rss_reset()
        reply, took_all = flood(port, first, TRAILER, 20 << 20, b"\r\n")
    finally:
        MODEL.delay = 0.0
    assert statuses(reply) == ["200", "431"] and not took_all, reply[:300]
    assert b"POSITIVE" in reply
    assert before is None or peak_rss() - before < 10_000


def test_small_pipelined_requests_are_all_answered_in_order(base):
    _, port = base
    one = b"GET /api/v1/health/live HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 3000 + b"\r\n\r\n"
    last = b"GET /api/v1/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reply = raw(port, one * 40 + last)  # 120 KB of heads in one write, each under 4 KB
    assert statuses(reply) == ["200"] * 41


def test_a_pipelined_body_deadline_starts_with_its_turn(base):
    """A request pipelined behind a 1-s one, its body not all sent: its body deadline (0.5 s
    here) used to run from its head, and closed the connection under the first request."""
    _, port = base
    body = b'{"text": "good"}'
    one = (f"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    two = one.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    MODEL.delay = 1.0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(one + body + two + body[:5])
            first = s.recv(65536)
            s.sendall(body[5:])  # the rest, once the first answer is in
            rest = b""
            while chunk := s.recv(65536):
                rest += chunk
    finally:
        MODEL.delay = 0.0
    assert statuses(first + rest) == ["200", "200"], first + rest
