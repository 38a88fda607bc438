"""The service end to end with real models loaded in the lifespan: the tiny trained encoder
and the shipped default."""

import pytest
from serve_helpers import KEY, make_client, wait_ready

H = {"X-API-Key": KEY}


@pytest.fixture(params=["tiny", "default"])
def real_client(request, trained_tiny):
    path = str(trained_tiny) if request.param == "tiny" else "default"
    with make_client(predictor=None, model_path=path) as c:  # loaded by the lifespan
        wait_ready(c, timeout=120)
        yield request.param, c


def test_endpoints_with_a_real_model(real_client):
    which, c = real_client
    health = c.get("/api/v1/health", headers=H).json()
    assert health["model"]["backend"] == "onnx" and health["model_loaded"]  # as users get it
    text = "great movie" if which == "tiny" else "I love it"
    r = c.post("/api/v1/analyze", json={"text": text, "include_reasoning": True}, headers=H)
    body = r.json()
    assert r.status_code == 200 and body["predicted_sentiment"] in ("POSITIVE", "NEGATIVE")
    assert body["reasoning"].startswith(body["predicted_sentiment"])  # occlusion reason
    assert body["scores"]["POSITIVE"] + body["scores"]["NEGATIVE"] == pytest.approx(1.0)
    r = c.post("/api/v1/analyze/batch", json={"texts": [text, "awful phone"]}, headers=H)
    assert r.status_code == 200 and [x["reasoning"] for x in r.json()["results"]] == [None, None]
    assert c.post("/api/v1/analyze", json={"text": " "}, headers=H).status_code == 400
    assert c.post("/api/v1/analyze", json={"text": text}).status_code == 401
    if which == "default":
        labels = [x["predicted_sentiment"] for x in r.json()["results"]]
        assert labels == ["POSITIVE", "NEGATIVE"]
