"""The key rule: X-API-Key or Authorization: Bearer, one key a request, every 401 logged
with the client's address and never with the key."""

import logging

import pytest
from serve_helpers import KEY, make_client, wait_ready

from polarity.serve.security import AmbiguousKey, presented_key


def _analyze(client, headers):
    return client.post("/api/v1/analyze", json={"text": "good"}, headers=headers)


@pytest.mark.parametrize("headers", [{"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"},
                                     {"authorization": f"bearer  {KEY}"},
                                     {"X-API-Key": KEY, "Authorization": f"Bearer {KEY}"}])
def test_the_key_is_accepted_in_either_header(client, headers):
    r = _analyze(client, headers)
    assert r.status_code == 200 and r.json()["predicted_sentiment"] == "POSITIVE"


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer wrong"},
                                     {"Authorization": f"Basic {KEY}"},
                                     {"Authorization": "Bearer "}])
def test_a_bearer_key_gets_the_same_checks(client, headers):
    r = _analyze(client, headers)
    assert r.status_code == 401 and "Authorization: Bearer" in r.json()["error"]["message"]


@pytest.mark.parametrize("headers", [
    [("X-API-Key", KEY), ("X-API-Key", KEY)],
    [("X-API-Key", KEY), ("X-API-Key", "other")],
    [("X-API-Key", "other"), ("X-API-Key", KEY)],
    [("X-API-Key", KEY), ("Authorization", "Bearer other")],
    [("Authorization", f"Bearer {KEY}"), ("Authorization", f"Bearer {KEY}")]])
def test_two_keys_in_one_request_are_refused(client, headers):
    r = client.post("/api/v1/analyze", json={"text": "good"}, headers=headers)
    assert r.status_code == 401
    assert "carries 2 API keys: send one" in r.json()["error"]["message"]


def test_presented_key_reads_raw_headers():
    assert presented_key([(b"x-api-key", b" k ")]) == "k"
    assert presented_key([(b"authorization", b"Bearer k"), (b"x-api-key", b"k")]) == "k"
    assert presented_key([(b"authorization", b"Basic abc")]) is None
    with pytest.raises(AmbiguousKey):
        presented_key([(b"x-api-key", b"k"), (b"x-api-key", b"k")])


def test_a_401_is_logged_with_the_client_address_never_the_key(client, caplog):
    caplog.set_level(logging.WARNING, logger="polarity.serve")
    secret = "pk_almost-the-right-key"
    assert _analyze(client, {"X-API-Key": secret}).status_code == 401
    assert client.post("/api/v1/analyze", json={"text": "good"},
                       headers=[("X-API-Key", KEY), ("X-API-Key", secret)]).status_code == 401
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("401")]
    assert len(lines) == 2
    assert all("testclient" in line for line in lines)  # TestClient's client address
    assert not any(secret in line or KEY in line for line in lines)
    assert "invalid API key" in lines[0] and "carries 2 API keys" in lines[1]


def test_the_openapi_schema_declares_both_headers(client):
    schemes = client.get("/openapi.json", headers={"X-API-Key": KEY}).json()[
        "components"]["securitySchemes"]
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key"
    assert schemes["HTTPBearer"]["scheme"] == "bearer"


def test_an_open_path_ignores_a_wrong_key():
    with make_client() as c:
        wait_ready(c)
        assert c.get("/api/v1/health/live", headers={"X-API-Key": "wrong"}).status_code == 200
