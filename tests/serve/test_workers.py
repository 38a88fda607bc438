"""Two uvicorn workers share one rate limit through a real Redis."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from serve_helpers import free_port, wait_for_server

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server not installed (.ci/run installs it)")


@pytest.fixture
def redis(tmp_path):
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield proc, f"redis://127.0.0.1:{port}/0"
    os.kill(proc.pid, signal.SIGCONT)
    proc.terminate()
    proc.wait()


@pytest.fixture
def redis_url(redis):
    return redis[1]


def test_a_stopped_redis_costs_at_most_its_timeout_and_fails_closed(redis):
    """SIGSTOP: Redis holds its connections and never answers. Before the socket timeout
    every request waited about 5 s and got a 500."""
    proc, url = redis
    port = free_port()
    env = {**os.environ, "MODEL_PATH": "vader", "API_KEY": "k1", "REDIS_URL": url,
           "REDIS_TIMEOUT_S": "0.5", "PORT": str(port), "LOG_LEVEL": "warning"}
    server = subprocess.Popen([sys.executable, "-m", "polarity", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_server(base, server)
        ok = httpx.post(f"{base}/api/v1/analyze", json={"text": "good"},
                        headers={"X-API-Key": "k1"})
        assert ok.status_code == 200
        os.kill(proc.pid, signal.SIGSTOP)
        started = time.perf_counter()
        r = httpx.post(f"{base}/api/v1/analyze", json={"text": "good"},
                       headers={"X-API-Key": "k1"}, timeout=30)
        waited = time.perf_counter() - started
        assert r.status_code == 503 and r.json()["error"]["type"] == "rate_limiter_unavailable"
        assert waited < 2.5
        assert httpx.get(f"{base}/api/v1/health", timeout=30).json()["status"] == "degraded"
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.5)
        again = httpx.post(f"{base}/api/v1/analyze", json={"text": "good"},
                           headers={"X-API-Key": "k1"}, timeout=30)
        assert again.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_two_workers_share_one_limit(redis_url, tmp_path):
    port = free_port()
    env = {**os.environ, "MODEL_PATH": "vader", "API_KEY": "k1", "RATE_LIMIT": "10/minute",
           "REDIS_URL": redis_url, "WORKERS": "2", "PORT": str(port), "LOG_LEVEL": "warning"}
    server = subprocess.Popen([sys.executable, "-m", "polarity", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_server(base, server)
        pids = set()
        for _ in range(30):
            with httpx.Client(base_url=base) as c:
                pids.add(c.get("/api/v1/health").json()["pid"])
        assert len(pids) == 2, "requests did not reach both workers"
        codes = []
        for i in range(11):
            # a new connection per request spreads requests over both workers
            with httpx.Client(base_url=base) as c:
                r = c.post("/api/v1/analyze", json={"text": f"good day {i}"},
                           headers={"X-API-Key": "k1"})
            codes.append(r.status_code)
        assert codes == [200] * 10 + [429]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode == 0
