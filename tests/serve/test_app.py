import asyncio
import json
import threading

import httpx
import pytest
from serve_helpers import KEY, WordCounter, make_client, wait_ready

H = {"X-API-Key": KEY}


def test_analyze_response_shape(client):
    r = client.post("/api/v1/analyze", json={"text": "a good day"}, headers=H)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"text", "predicted_sentiment", "confidence", "scores", "reasoning",
                         "tier", "escalation",
                         "windows", "processing_time"}
    assert body["predicted_sentiment"] == "POSITIVE" and body["confidence"] == pytest.approx(0.9)
    assert body["scores"] == {"POSITIVE": pytest.approx(0.9), "NEGATIVE": pytest.approx(0.1)}
    assert body["reasoning"] is None  # include_reasoning defaults to false, as everywhere
    assert body["windows"] == 1
    assert r.headers["X-RateLimit-Limit"] == "1000" and r.headers["X-Request-ID"]
    r = client.post("/api/v1/analyze", json={"text": "bad", "include_reasoning": True},
                    headers=H)
    assert r.json()["predicted_sentiment"] == "NEGATIVE"
    assert r.json()["reasoning"] == "mentions 'good'"


def test_text_of_invisible_characters_is_blank(client):
    for text in ["\u200b\u200b", "\ufeff", "\x00\x01 \x7f", "\u200e\u2060"]:
        r = client.post("/api/v1/analyze", json={"text": text}, headers=H)
        assert r.status_code == 400, text
        assert "zero-width" in r.json()["error"]["message"]


def test_an_input_error_inside_the_predictor_is_a_400(client, monkeypatch):
    from polarity.errors import InputError

    model = client.app.state.service.predictor

    def refuse(texts, batch_size=32, include_reasoning=False):
        raise InputError("text #0 is not something this model reads")

    monkeypatch.setattr(model, "predict", refuse)
    monkeypatch.setattr(client.app.state.service.runner, "predict", refuse)
    r = client.post("/api/v1/analyze", json={"text": "fine"}, headers=H)
    assert r.status_code == 400 and "not something" in r.json()["error"]["message"]


def test_batch_is_one_model_call(client):
    model = client.app.state.service.predictor
    before = list(model.calls)
    r = client.post("/api/v1/analyze/batch", json={"texts": ["good", "bad", "so good"]},
                    headers=H)
    assert r.status_code == 200
    body = r.json()
    assert [x["predicted_sentiment"] for x in body["results"]] == ["POSITIVE", "NEGATIVE",
                                                                  "POSITIVE"]
    assert body["total_processing_time"] >= 0 and model.calls[len(before):] == [3]


def test_health_is_open_and_its_details_and_metrics_need_a_key(client):
    r = client.get("/api/v1/health")
    body = r.json()
    assert r.status_code == 200 and body == {"status": "ok", "model_loaded": True, "checks": {
        "model": True, "rate_limiter": True}}  # no pid, memory, uptime or version
    assert client.get("/api/v1/health/live").json() == {"status": "alive"}
    body = client.get("/api/v1/health", headers=H).json()
    assert body["model"] == {"name": "word-counter", "backend": "test", "version": "0"}
    assert body["memory_usage"]["rss_mb"] > 0 and body["uptime"] >= 0 and body["pid"] > 0
    assert client.get("/api/v1/health/live", headers=H).json()["pid"] > 0
    assert client.get("/metrics").status_code == 401
    client.post("/api/v1/analyze", json={"text": "good"}, headers=H)
    text = client.get("/metrics", headers=H).text
    for name in ("polarity_requests_total", "polarity_request_latency_seconds_bucket",
                 "polarity_model_batch_size_bucket",
                 'polarity_predictions_total{label="POSITIVE",model="default"}',
                 "polarity_prediction_confidence_bucket", "polarity_queue_depth"):
        assert name in text


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}])
def test_missing_or_wrong_key_is_401(client, headers):
    r = client.post("/api/v1/analyze", json={"text": "good"}, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "unauthorized" and "X-API-Key" in r.json()["error"][
        "message"]


@pytest.mark.parametrize("body, fragment", [
    ({"text": ""}, "empty"),
    ({"text": "   \n"}, "whitespace"),
    ({"text": 5}, "text"),
    ({}, "text: required"),
    ({"text": "ok", "extra": 1}, "extra: unknown field"),
    ({"text": "x" * 10_001}, "longer than 10000 characters"),
    ({"text": "fine", "include_reasoning": "maybe"}, "include_reasoning"),
    ([1, 2], "JSON object"),
])
def test_invalid_requests_are_400_with_a_message(client, body, fragment):
    r = client.post("/api/v1/analyze", json=body, headers=H)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert fragment in err["message"] and err["request_id"]


def test_bad_json_is_400(client):
    r = client.post("/api/v1/analyze", content=b"{not json", headers={**H, "Content-Type":
                                                                      "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]


@pytest.mark.parametrize("content_type, body, fragment", [
    ("text/plain", b'{"text": "hi"}', "Content-Type: application/json (got text/plain)"),
    (None, b'{"text": "hi"}', "(got no Content-Type)"),
    ("application/json; charset=latin-1", b'{"text": "caf\xe9"}', "encoded in UTF-8"),
    ("application/json", b'["a list"]', "must be a JSON object"),
])
def test_bodies_sent_the_wrong_way_say_how_to_send_them(client, content_type, body, fragment):
    headers = {**H, "Content-Type": content_type} if content_type else H
    r = client.post("/api/v1/analyze", content=body, headers=headers)
    assert r.status_code == 400 and fragment in r.json()["error"]["message"], r.text


@pytest.mark.parametrize("body, fragment", [
    ({"texts": []}, "texts is empty"),
    ({"texts": ["ok"] * 257}, "at most 256"),
    ({"texts": ["fine", " "]}, "texts[1]"),
    ({"texts": "not a list"}, "texts"),
])
def test_invalid_batches_are_400(client, body, fragment):
    r = client.post("/api/v1/analyze/batch", json=body, headers=H)
    assert r.status_code == 400 and fragment in r.json()["error"]["message"]


def test_oversized_body_is_413():
    with make_client(max_body_bytes=1000) as c:
        wait_ready(c)
        r = c.post("/api/v1/analyze", json={"text": "x" * 2000}, headers=H)
        assert r.status_code == 413 and r.json()["error"]["type"] == "payload_too_large"

        def chunks():  # no Content-Length: the streamed bytes are counted
            for _ in range(10):
                yield b" " * 200
        r = c.post("/api/v1/analyze", content=chunks(), headers={**H, "Content-Type":
                                                                  "application/json"})
        assert r.status_code == 413


def test_rate_limit_per_key_with_headers():
    with make_client(rate_limit="3/minute", api_keys=["second-key"]) as c:
        wait_ready(c)
        codes = [c.post("/api/v1/analyze", json={"text": "good"}, headers=H).status_code
                 for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.post("/api/v1/analyze", json={"text": "good"}, headers=H)
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1 and r.headers["X-RateLimit-Remaining"] == "0"
        assert r.headers["X-RateLimit-Limit"] == "3" and int(r.headers["X-RateLimit-Reset"]) > 0
        # another key has its own window
        r = c.post("/api/v1/analyze", json={"text": "good"}, headers={"X-API-Key": "second-key"})
        assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "2"


def test_batch_spends_one_unit_per_text():
    with make_client(rate_limit="5/minute") as c:
        wait_ready(c)
        r = c.post("/api/v1/analyze/batch", json={"texts": ["good"] * 4}, headers=H)
        assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "1"
        r = c.post("/api/v1/analyze/batch", json={"texts": ["good"] * 2}, headers=H)
        assert r.status_code == 429


def test_model_error_is_500_without_internals():
    with make_client(predictor=WordCounter(fail=True)) as c:
        wait_ready(c)
        r = c.post("/api/v1/analyze", json={"text": "good"}, headers=H)
        assert r.status_code == 500
        err = r.json()["error"]
        assert err["request_id"] == r.headers["X-Request-ID"]
        assert "secret" not in r.text and "Traceback" not in r.text


def test_request_ids_and_metrics_cover_answers_and_failures():
    with make_client(predictor=WordCounter(fail=True)) as c:
        wait_ready(c)
        r = c.post("/api/v1/analyze", json={"text": "good"}, headers={**H, "X-Request-ID": "r-1"})
        assert r.headers["X-Request-ID"] == "r-1" and r.json()["error"]["request_id"] == "r-1"
        c.post("/api/v1/analyze", json={"text": ""}, headers=H)
        text = c.get("/metrics", headers=H).text
    assert ('polarity_requests_total{endpoint="/api/v1/analyze",model="default",status="500"} '
            '1.0') in text
    assert 'polarity_requests_total{endpoint="/api/v1/analyze",model="",status="400"} 1.0' in text
    assert 'polarity_errors_total{code="500"} 1.0' in text


def test_health_is_503_until_the_model_loads():
    with make_client() as c:
        c.app.state.service.predictor = None  # as it is before the lifespan loads it
        r = c.get("/api/v1/health")
        assert r.status_code == 503 and r.json()["model_loaded"] is False
        assert r.json()["checks"] == {"model": False, "rate_limiter": True}
        r = c.post("/api/v1/analyze", json={"text": "good"}, headers=H)
        assert r.status_code == 503 and r.json()["error"]["type"] == "model_loading"


def test_the_model_loads_before_the_server_accepts_and_a_bad_one_stops_it(tmp_path, caplog):
    from polarity.errors import ModelNotFoundError

    caplog.set_level("INFO", logger="polarity.serve")
    with make_client(predictor=None, model_path="vader") as c:  # no wait_ready needed
        assert c.get("/api/v1/health").status_code == 200
    assert "loading model vader" in caplog.text
    with pytest.raises(ModelNotFoundError, match="polarity.json is missing"):
        with make_client(model_path=str(tmp_path)):  # not a model folder
            pass


def test_startup_without_keys_is_refused():
    from polarity.errors import PolarityError
    from polarity.serve.app import create_app
    from polarity.serve.settings import Settings

    with pytest.raises(PolarityError, match="API_KEY"):
        create_app(Settings(), predictor=WordCounter())


async def _concurrent(app, n: int, text: str = "good") -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as ac:
        return await asyncio.gather(*[
            ac.post("/api/v1/analyze", json={"text": f"{text} {i}", "include_reasoning": False},
                    headers=H) for i in range(n)])


def test_concurrent_requests_are_micro_batched():
    model = WordCounter(delay=0.05)
    with make_client(predictor=model, max_wait_ms=20) as c:
        wait_ready(c)
        model.calls.clear()
        responses = c.portal.call(_concurrent, c.app, 24)
        assert all(r.status_code == 200 for r in responses)
        assert sum(model.calls) == 24 and len(model.calls) < 24 and max(model.calls) > 1
        assert [r.json()["text"] for r in responses] == [f"good {i}" for i in range(24)]


def test_concurrent_reviews_fill_a_model_call():
    # 360-character reviews (about 80 tokens each): priced by their characters they filled
    # a 2,048-token call with 5 of them; by their estimated tokens, 16 share a call.
    review = "The battery lasts two days and the screen is sharp, but the case creaks. " * 5
    model = WordCounter(delay=0.05)
    with make_client(predictor=model) as c:
        wait_ready(c)
        model.calls.clear()
        responses = c.portal.call(_concurrent, c.app, 16, review.strip())
        assert all(r.status_code == 200 for r in responses)
        assert sum(model.calls) == 16 and max(model.calls) >= 12


def test_full_queue_answers_503():
    model = WordCounter(delay=0.2)
    with make_client(predictor=model, max_queue=2, batch_size=1, max_wait_ms=0) as c:
        wait_ready(c)
        codes = sorted(r.status_code for r in c.portal.call(_concurrent, c.app, 8))
        assert 200 in codes and 503 in codes and set(codes) <= {200, 503}


def test_access_log_has_no_text(client, caplog):
    caplog.set_level("INFO", logger="polarity.access")
    client.post("/api/v1/analyze", json={"text": "my secret good text"}, headers=H)
    record = json.loads(caplog.records[-1].getMessage())
    assert record["text_chars"] == 19 and record["prediction"] == "POSITIVE"
    assert record["key_id"] and "secret" not in caplog.text


def test_openapi_documents_errors(client):
    spec = client.get("/openapi.json", headers=H).json()
    responses = spec["paths"]["/api/v1/analyze"]["post"]["responses"]
    assert {"200", "400", "401", "413", "429", "500", "503"} <= set(responses)


def test_concurrency_is_thread_safe_under_load(client):
    errors = []

    def worker():
        for i in range(20):
            r = client.post("/api/v1/analyze", json={"text": f"good {i}"}, headers=H)
            if r.status_code != 200:
                errors.append(r.status_code)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_texts_are_logged_only_when_configured(caplog):
    caplog.set_level("INFO", logger="polarity.access")
    with make_client(log_texts=True) as c:
        wait_ready(c)
        c.post("/api/v1/analyze", json={"text": "visible good text"}, headers=H)
    assert json.loads(caplog.records[-1].getMessage())["text"] == "visible good text"


@pytest.mark.parametrize("sent", ["x" * 30_000, "two\nlines", 'quote"d', ""])
def test_a_request_id_that_is_not_a_short_token_is_replaced(client, sent):
    r = client.get("/api/v1/health", headers={"X-Request-ID": sent})
    rid = r.headers["X-Request-ID"]
    assert rid != sent and len(rid) == 16 and rid.isalnum()


def test_liveness_stays_200_when_readiness_is_503(client):
    state = client.app.state.service

    async def down():
        return False

    state.limiter.healthy = down  # as when Redis stops answering
    assert client.get("/api/v1/health/ready").status_code == 503
    assert client.get("/api/v1/health").status_code == 503
    live = client.get("/api/v1/health/live")
    assert live.status_code == 200 and live.json()["status"] == "alive"
    for path, code in (("/api/v1/health/live", 200), ("/api/v1/health/ready", 503)):
        head = client.head(path)
        assert head.status_code == code and head.content == b""
