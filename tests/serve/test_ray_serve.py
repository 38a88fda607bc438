"""The same FastAPI app as a Ray Serve deployment with two replicas, on a local Ray."""

import time

import httpx
import pytest
from serve_helpers import KEY, free_port, wait_for_server

from polarity.serve.settings import Settings


def test_ray_serve_answers_through_the_same_api(trained_tiny):
    pytest.importorskip("ray.serve")
    from ray import serve

    from polarity.serve.ray_serve import APP_NAME, deploy, shutdown

    port = free_port()
    settings = Settings(model_path=str(trained_tiny), api_key=KEY, rate_limit="1000/hour",
                        port=port, threads=1, runtime="torch", allow_unshared_limits=True)
    deploy(settings, replicas=2)
    try:
        base = f"http://127.0.0.1:{port}"
        # Two replicas import torch and load the model on 2 busy cores, each in its own time,
        # and the proxy spreads requests over both: ready means many healthy answers in a row.
        deadline, healthy = time.time() + 300, 0
        while healthy < 10 and time.time() < deadline:
            wait_for_server(base, timeout=max(1.0, deadline - time.time()))
            ok = httpx.get(f"{base}/api/v1/health", timeout=5).status_code == 200
            healthy = healthy + 1 if ok else 0
        health = httpx.get(f"{base}/api/v1/health", headers={"X-API-Key": KEY}).json()
        assert health["status"] == "ok" and health["model"]["backend"] == "encoder"
        status = serve.status().applications[APP_NAME].deployments[APP_NAME]
        assert sum(status.replica_states.values()) == 2

        texts = ["so happy great", "awful broken sad"]
        ok = httpx.post(f"{base}/api/v1/analyze/batch", json={"texts": texts},
                        headers={"X-API-Key": KEY}).json()
        assert [r["predicted_sentiment"] for r in ok["results"]] == ["POSITIVE", "NEGATIVE"]
        denied = httpx.post(f"{base}/api/v1/analyze", json={"text": "fine"})
        assert denied.status_code == 401 and denied.json()["error"]["code"]
    finally:
        shutdown()


def test_sigterm_takes_the_deployment_down_cleanly(monkeypatch):
    """ray.init replaces SIGTERM's handler with sys.exit; the handler that shuts the
    deployment down must be the one in place while serving."""
    import os
    import signal
    import sys
    import threading

    from polarity.serve import ray_serve

    calls = []

    def fake_deploy(settings, replicas, address=None):
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))  # as ray.init
        calls.append("deploy")

    monkeypatch.setattr(ray_serve, "deploy", fake_deploy)
    monkeypatch.setattr(ray_serve, "shutdown", lambda: calls.append("shutdown"))
    previous = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        ray_serve.serve_on_ray(Settings(api_key=KEY), replicas=1)
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert calls == ["deploy", "shutdown"]
