"""Transport-test helpers: a transparent stand-in model and client factories."""

import time
from contextlib import contextmanager

from fastapi.testclient import TestClient

from polarity.contract import ModelInfo, check_texts, from_positive_probability
from polarity.serve.app import create_app
from polarity.serve.settings import Settings

KEY = "test-key-123"


class WordCounter:
    """A transparent stand-in model for transport tests: POSITIVE iff 'good' appears.
    It records every call so tests can see how requests were batched."""

    info = ModelInfo("word-counter", "test", "0")

    def __init__(self, delay: float = 0.0, fail: bool = False):
        self.calls: list[int] = []
        self.delay, self.fail = delay, fail

    def predict(self, texts, batch_size=32, include_reasoning=False):
        texts = check_texts(texts)
        self.calls.append(len(texts))
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("secret internal detail")
        return [from_positive_probability(0.9 if "good" in t else 0.2,
                                          "mentions 'good'" if include_reasoning else None)
                for t in texts]


def make_client(predictor=None, **settings) -> TestClient:
    fields = {"api_key": KEY, "rate_limit": "1000/hour", **settings}
    if predictor is None and "model_path" not in settings and "models" not in settings:
        predictor = WordCounter()  # a real model only when a model_path is given
    app = create_app(Settings(**fields), predictor=predictor)
    return TestClient(app, raise_server_exceptions=False)


def wait_ready(client: TestClient, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if client.get("/api/v1/health").status_code == 200:
            return
        time.sleep(0.02)
    raise AssertionError("model never became ready")




def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(base: str, process=None, timeout: float = 60) -> None:
    """Poll a live server's health endpoint until it answers 200; fail with its stderr.
    ``process``: the server's Popen, to stop waiting when it dies (None when it is not ours)."""
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            break
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    dead = process is not None and process.poll() is not None
    err = process.stderr.read().decode() if dead and process.stderr else ""
    raise AssertionError(f"server at {base} did not become healthy {err}")


@contextmanager
def live_server(predictor=None, **settings):
    """A real uvicorn server (the service's own configuration) on a free port, in a thread:
    for clients that speak HTTP themselves (huggingface_hub, a browser). Yields its URL."""
    import threading

    import uvicorn

    from polarity.serve.run import server_config

    fields = {"api_key": KEY, "rate_limit": "100000/hour", "port": free_port(),
              "log_level": "warning", **settings}
    config = Settings(**fields)
    app = create_app(config, predictor=WordCounter() if predictor is None else predictor)
    server = uvicorn.Server(server_config(app, config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{config.port}"
    try:
        wait_for_server(url)
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
