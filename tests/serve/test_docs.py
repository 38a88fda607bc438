"""/docs, /openapi.json and /metrics: behind a key by default, off by a setting, and the
docs page made on the server with nothing loaded from elsewhere."""

import pytest
from serve_helpers import KEY, make_client, wait_ready

H = {"X-API-Key": KEY}


@pytest.mark.parametrize("path", ["/metrics", "/docs", "/openapi.json"])
def test_ops_paths_need_a_key_by_default(client, path):
    assert client.get(path).status_code == 401
    assert client.get(path, headers=H).status_code == 200


def test_the_docs_page_loads_nothing_from_elsewhere(client):
    r = client.get("/docs", headers=H)
    page = r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "script-src" not in r.headers["content-security-policy"]  # default-src 'none'
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "POST /api/v1/analyze/batch" in page and "X-API-Key: &lt;key&gt;" in page
    assert "Authorization: Bearer &lt;key&gt;" in page
    assert "&quot;maxItems&quot;" in page  # the request schema, escaped


@pytest.mark.parametrize("setting, gone", [({"docs_enabled": False}, ["/docs", "/openapi.json"]),
                                           ({"metrics_enabled": False}, ["/metrics"])])
def test_docs_and_metrics_can_be_switched_off(setting, gone):
    with make_client(**setting) as c:
        wait_ready(c)
        for path in gone:
            assert c.get(path, headers=H).status_code == 404
        assert c.post("/api/v1/analyze", json={"text": "good"}, headers=H).status_code == 200


def test_an_operator_may_open_them_again():
    with make_client(open_endpoints=["/api/v1/health", "/metrics"]) as c:
        wait_ready(c)
        assert c.get("/metrics").status_code == 200
        assert c.get("/api/v1/health").json().get("pid") is None  # details still need a key


def test_without_keys_health_shows_its_details():
    with make_client(api_key=None, auth_disabled=True) as c:
        wait_ready(c)
        assert c.get("/api/v1/health").json()["pid"] > 0
