"""The CPU image from outside, as a user runs it (`make image && make test-image`): health, keys,
analyze and batch calls, a small rate limit, a non-root process, a clean stop on SIGTERM, and a
model folder mounted at /models served with MODEL_PATH. Skipped where no Docker daemon answers
or the image is not built."""

import json
import os
import shutil
import subprocess
import time

import pytest

pytestmark = pytest.mark.docker
IMAGE = os.environ.get("POLARITY_IMAGE", "polarity:cpu")
KEY = "pk_test_image_key_0123456789"


def docker(*args, check=True, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check,
                          timeout=timeout)


@pytest.fixture(scope="module", autouse=True)
def image_present():
    if shutil.which("docker") is None or docker("info", check=False).returncode != 0:
        pytest.skip("no Docker daemon answers here (start dockerd; .ci/run installs docker.io)")
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        pytest.skip(f"image {IMAGE} is not built: run `make image`")


def run_container(*extra, env: dict | None = None) -> tuple[str, str]:
    """Start the image detached on a free host port; returns (container id, base URL)."""
    args = ["run", "-d", "-p", "127.0.0.1::8000", "-e", f"API_KEYS={KEY}"]
    for key, value in (env or {}).items():
        args += ["-e", f"{key}={value}"]
    cid = docker(*args, *extra, IMAGE).stdout.strip()
    port = docker("port", cid, "8000/tcp").stdout.strip().rsplit(":", 1)[-1]
    return cid, f"http://127.0.0.1:{port}"


def wait_healthy(base: str, cid: str, timeout: float = 120) -> float:
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            if httpx.get(f"{base}/api/v1/health/ready", timeout=2).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    logs = docker("logs", cid, check=False)
    raise AssertionError(f"container never became ready:\n{logs.stdout}\n{logs.stderr}")


@pytest.fixture(scope="module")
def service():
    cid, base = run_container(env={"RATE_LIMIT": "8/minute"})
    try:
        wait_healthy(base, cid)
        yield cid, base
    finally:
        docker("rm", "-f", cid, check=False)


def test_health_analyze_batch_and_keys(service):
    import httpx

    _, base = service
    assert httpx.get(f"{base}/api/v1/health/live").json()["status"] == "alive"
    r = httpx.post(f"{base}/api/v1/analyze", json={"text": "I love it"},
                   headers={"X-API-Key": KEY})
    assert r.status_code == 200 and r.json()["predicted_sentiment"] == "POSITIVE"
    assert httpx.post(f"{base}/api/v1/analyze", json={"text": "x"}).status_code == 401
    batch = httpx.post(f"{base}/api/v1/analyze/batch", headers={"X-API-Key": KEY},
                       json={"texts": ["great value", "worst purchase ever"]})
    assert [x["predicted_sentiment"] for x in batch.json()["results"]] == ["POSITIVE",
                                                                           "NEGATIVE"]


def test_a_small_rate_limit_answers_429(service):
    import httpx

    _, base = service
    codes = [httpx.post(f"{base}/api/v1/analyze", json={"text": f"fine {i}"},
                        headers={"X-API-Key": KEY}).status_code for i in range(10)]
    assert 429 in codes and codes.index(429) <= 8


def test_the_process_is_not_root(service):
    cid, _ = service
    uid = docker("exec", cid, "python", "-c", "import os; print(os.getuid())").stdout.strip()
    assert uid != "0"


def test_sigterm_stops_the_container_cleanly_within_the_grace_period():
    cid, base = run_container()
    try:
        wait_healthy(base, cid)
        started = time.perf_counter()
        docker("stop", "--time", "30", cid)
        stopped = time.perf_counter() - started
        state = json.loads(docker("inspect", cid).stdout)[0]["State"]
        assert state["ExitCode"] == 0 and stopped < 30  # not killed at the deadline
    finally:
        docker("rm", "-f", cid, check=False)


def test_a_mounted_model_folder_is_served(tmp_path):
    import httpx

    from polarity.predictor import default_model_path

    folder = tmp_path / "mine"
    shutil.copytree(default_model_path(), folder)
    card = json.loads((folder / "polarity.json").read_text())
    card["name"] = "mounted-model"
    (folder / "polarity.json").write_text(json.dumps(card))
    os.chmod(tmp_path, 0o755)
    cid, base = run_container("-v", f"{tmp_path}:/models:ro",
                              env={"MODEL_PATH": "/models/mine"})
    try:
        wait_healthy(base, cid, timeout=180)
        health = httpx.get(f"{base}/api/v1/health", headers={"X-API-Key": KEY}).json()
        assert health["model"]["name"] == "mounted-model"
        r = httpx.post(f"{base}/api/v1/analyze", json={"text": "awful"},
                       headers={"X-API-Key": KEY})
        assert r.json()["predicted_sentiment"] == "NEGATIVE"
    finally:
        docker("rm", "-f", cid, check=False)
