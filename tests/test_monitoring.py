"""deploy/grafana/polarity.json and deploy/prometheus/alerts.yml: valid PromQL, alerts that
fire on the series that should raise them (promtool), and no query of a metric or label
that /metrics does not export."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "polarity.json"
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
#: What Grafana puts in place of its variables, to check a panel's query as plain PromQL.
VARIABLES = {"$__rate_interval": "5m", "$model": ".*"}
HISTOGRAM_SERIES = ("_bucket", "_count", "_sum")


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    out = [t["expr"] for p in panels for t in p["targets"]]
    for name, value in VARIABLES.items():
        out = [q.replace(name, value) for q in out]
    return out


def rule_queries() -> list[str]:
    return [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"]
            for r in g["rules"]]


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.skip("promtool is not installed: apt-get install -y prometheus (.ci/run does)")
    return found


def run(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run([promtool(), *args], capture_output=True, text=True, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_alert_rules_pass_promtool_and_fire_when_they_should():
    assert "SUCCESS: 6 rules found" in run("check", "rules", str(RULES))
    assert "SUCCESS" in run("test", "rules", "alerts_test.yml", cwd=RULES.parent)


def test_every_dashboard_query_is_valid_promql(tmp_path):
    # promtool checks PromQL in rule files: each panel query as a recording rule
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"polarity:panel_{i}", "expr": q} for i, q in enumerate(dashboard_queries())]}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    assert f"SUCCESS: {len(dashboard_queries())} rules found" in run("check", "rules", str(path))


def test_the_dashboard_has_every_asked_for_panel():
    titles = " | ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    for topic in ("request rate", "latency p50", "latency p99", "errors by status",
                  "queue depth", "escalation rate", "rate-limit refusals", "psi"):
        assert topic in titles, topic


@pytest.fixture(scope="module")
def exported() -> tuple[dict[str, str], dict[str, set[str]]]:
    """Every metric family /metrics exports (name -> type, from its TYPE lines) and each
    one's labels, from a service serving a model and a cascade side by side."""
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "serve"))
    from serve_helpers import KEY, WordCounter, make_client, wait_ready
    from test_cascade_service import cascade

    with make_client(predictor={"plain": WordCounter(), "cascade": cascade()[0]},
                     models=["plain", "cascade"]) as c:
        wait_ready(c)
        text = c.get("/metrics", headers={"X-API-Key": KEY}).text
        wrappers = [v for v in vars(c.app.state.metrics).values() if hasattr(v, "_labelnames")]
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    labels = {}
    for w in wrappers:
        name = w._name + ("_total" if w._type == "counter" else "")
        labels[name] = set(w._labelnames)
    assert set(labels) <= set(types)
    return types, labels


def family(series: str, types: dict[str, str]) -> str | None:
    """The exported family a queried series belongs to, if any."""
    if series in types:
        return series
    for suffix in HISTOGRAM_SERIES:
        base = series.removesuffix(suffix)
        if base != series and types.get(base) == "histogram":
            return base
    return None


@pytest.mark.parametrize("query", dashboard_queries() + rule_queries())
def test_every_queried_metric_and_label_is_one_metrics_exports(query, exported):
    types, labels = exported
    names = set(re.findall(r"\b(polarity_[a-z_]+)\b", query))
    assert names, f"no polarity metric in {query!r}"
    families = {n: family(n, types) for n in names}
    missing = sorted(n for n, f in families.items() if f is None)
    assert not missing, f"{missing} are not exported by /metrics"
    known = set().union(*(labels[f] for f in families.values())) | {"le"}
    used = set(re.findall(r"(\w+)\s*(?:=~|!=|!~|=)\s*\"", query))
    for group in re.findall(r"\b(?:by|ignoring|on|without)\s*\(([^)]*)\)", query):
        used |= {g.strip() for g in group.split(",") if g.strip()}
    assert used <= known, f"labels {sorted(used - known)} are on none of {sorted(names)}"
