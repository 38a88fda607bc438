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
