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


def test_a_stopped_redis_costs_each_request_its_own_deadline_not_a_queue(redis):
    """20 requests of one key while Redis is stopped: each is answered within
    REDIS_TIMEOUT_S and a little more. They used to wait one after the other behind the
    key's lock, each adding its own timeout: up to 9.9 s for a 0.5 s timeout."""
    import asyncio

    from polarity.serve.errors import LimiterUnavailable
    from polarity.serve.ratelimit import RateLimiter

    proc, url = redis
    limiter = RateLimiter("1000/hour", url, "closed", timeout=0.5)

    async def timed_spend() -> tuple[float, str]:
        started = time.perf_counter()
        try:
            await limiter.spend("one-key")
            outcome = "allowed"
        except LimiterUnavailable:
            outcome = "unavailable"
        return time.perf_counter() - started, outcome

    async def scenario():
        assert (await timed_spend())[1] == "allowed"  # connected while Redis answers
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            return await asyncio.gather(*(timed_spend() for _ in range(20)))
        finally:
            os.kill(proc.pid, signal.SIGCONT)

    results = asyncio.run(scenario())
    assert {outcome for _, outcome in results} == {"unavailable"}
    assert max(took for took, _ in results) < 0.5 + 0.5


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
                pids.add(c.get("/api/v1/health", headers={"X-API-Key": "k1"}).json()["pid"])
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
