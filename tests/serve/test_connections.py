"""The connection cap on a live server: idle connections make room for a request, oldest
first; connections that are all answering something still get 503."""

import socket
import threading
import time

import httpx
import pytest
import uvicorn
from serve_helpers import KEY, WordCounter, free_port, wait_for_server

from polarity.serve.app import create_app
from polarity.serve.connections import IdleConnections
from polarity.serve.run import server_config
from polarity.serve.settings import Settings

pytest.importorskip("httptools")

CAP = 20
MODEL = WordCounter()


@pytest.fixture(scope="module")
def port():
    settings = Settings(api_key=KEY, port=free_port(), rate_limit="100000/hour",
                        header_timeout_s=20, body_timeout_s=20, max_connections=CAP,
                        log_level="warning")
    server = uvicorn.Server(server_config(create_app(settings, predictor=MODEL), settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_server(f"http://127.0.0.1:{settings.port}")
    yield settings.port
    server.should_exit = True
    thread.join(10)


def closed_by_server(s: socket.socket) -> bool:
    """Whether the server has closed ``s`` (asked without waiting)."""
    s.setblocking(False)
    try:
        return s.recv(100) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_idle_connections_at_the_cap_make_room_oldest_first(port):
    """2,100 idle connections without a key (the cap 2,048) made every request, liveness
    included, 503 for the 10 s of the header deadline. Here: 25 idle against a cap of 20."""
    held = []
    try:
        for _ in range(25):
            held.append(socket.create_connection(("127.0.0.1", port)))
            time.sleep(0.01)  # an order to evict them in
        time.sleep(0.2)
        for path in ("/api/v1/health/live", "/api/v1/health"):
            r = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
            assert r.status_code == 200, (path, r.text)
        time.sleep(0.3)  # the closes reach the client
        closed = [closed_by_server(s) for s in held]
        assert closed[:6] == [True] * 6  # the oldest made room
        assert closed[-5:] == [False] * 5  # the newest are still open
    finally:
        for s in held:
            s.close()


def test_a_head_in_progress_that_makes_room_gets_503(port):
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(CAP)]
    try:
        held[0].sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")  # never finished
        time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/health/live").status_code == 200
        held[0].settimeout(2)
        assert held[0].recv(200).startswith(b"HTTP/1.1 503")
    finally:
        for s in held:
            s.close()


def test_connections_all_answering_requests_still_get_503(port):
    body = b'{"text": "good"}'
    request = (f"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
               ).encode() + body
    MODEL.delay = 1.5
    busy = []
    try:
        for _ in range(CAP + 2):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(request)
            busy.append(s)
        time.sleep(0.3)
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/health/live", timeout=5)
        assert r.status_code == 503  # nothing idle to close: the cap holds
    finally:
        MODEL.delay = 0.0
        for s in busy:
            s.close()


def test_the_registry_closes_oldest_first():
    class Conn:
        def __init__(self, name):
            self.name, self.evicted = name, False

        def evict(self):
            self.evicted = True

    a, b, c = Conn("a"), Conn("b"), Conn("c")
    registry, open_ = IdleConnections(), {a, b, c}
    for conn in (a, b, c):
        registry.idle(conn)
    registry.idle(a)  # a answered something since: now the newest idle
    registry.busy(c)  # c is answering a request: never closed
    assert registry.make_room(open_, cap=2) == 2
    assert (a.evicted, b.evicted, c.evicted) == (True, True, False) and open_ == {c}
