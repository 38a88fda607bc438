"""Several models behind one service: a request picks one with `model`, each has its own
queue and model thread, a text costs its tier's quota units, and /metrics says which."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from serve_helpers import KEY, WordCounter, make_client, wait_ready
from test_cascade_service import cascade

from polarity.modelcard import ModelCard
from polarity.registry import BACKENDS
from polarity.serve.settings import Settings

H = {"X-API-Key": KEY}


def post(c, path, body):
    return c.post(path, json=body, headers=H)


def test_real_tiny_models_by_folder_and_name_are_listed_and_picked(trained_tiny):
    with make_client(models=[f"tiny={trained_tiny}", "vader"]) as c:
        wait_ready(c, timeout=120)
        listed = c.get("/api/v1/models", headers=H).json()["data"]
        assert [(m["name"], m["default"], m["tier"]) for m in listed] == [
            ("tiny", True, "fast"), ("vader", False, "baseline")]
        assert listed[0]["card"]["backend"] == "encoder"
        assert listed[0]["card"]["accuracy"]["validation"] > 0.5  # from its own card
        assert listed[1]["version"] == "3.3.2" and listed[1]["units_per_text"] == 1
        health = c.get("/api/v1/health", headers=H).json()
        assert [m["name"] for m in health["models"]] == ["tiny", "vader"]
        default = post(c, "/api/v1/analyze", {"text": "a great movie"}).json()
        vader = post(c, "/api/v1/analyze", {"text": "a great movie", "model": "vader"}).json()
        assert (default["tier"], vader["tier"]) == ("fast", "baseline")
        batch = post(c, "/api/v1/analyze/batch", {"texts": ["love", "hate"], "model": "vader"})
        assert [r["predicted_sentiment"] for r in batch.json()["results"]] == [
            "POSITIVE", "NEGATIVE"]
        classify = post(c, "/v1/classify", {"input": "love it", "model": "vader"}).json()
        assert classify["model"] == "vader"
        tei = post(c, "/predict", {"inputs": "hate it", "model": "vader"}).json()
        assert tei[0]["label"] == "NEGATIVE"


def test_an_unknown_model_is_404_naming_the_served_ones():
    with make_client(predictor={"a": WordCounter(), "b": WordCounter()}, models=["a", "b"]) as c:
        wait_ready(c)
        for path, body in (("/api/v1/analyze", {"text": "x", "model": "c"}),
                           ("/predict", {"inputs": "x", "model": "c"}),
                           ("/classify", {"input": "x", "model": "c"})):
            r = post(c, path, body)
            assert r.status_code == 404 and r.json()["error"]["type"] == "model_not_found"
            assert "'a', 'b'" in r.json()["error"]["message"]


def test_a_slow_tier_never_delays_a_fast_one():
    slow, fast = WordCounter(delay=0.8), WordCounter()
    with make_client(predictor={"fast": fast, "slow": slow}, models=["fast", "slow"],
                     max_queue=2) as c:
        wait_ready(c)
        with ThreadPoolExecutor(4) as pool:
            busy = [pool.submit(post, c, "/api/v1/analyze", {"text": f"good {i}",
                                                             "model": "slow"})
                    for i in range(2)]
            time.sleep(0.2)  # the slow tier's thread is busy, its queue full
            full = post(c, "/api/v1/analyze", {"text": "good", "model": "slow"})
            started = time.perf_counter()
            quick = post(c, "/api/v1/analyze", {"text": "good"})
            seconds = time.perf_counter() - started
            assert [f.result().status_code for f in busy] == [200, 200]
        assert full.status_code == 503 and full.json()["error"]["type"] == "overloaded"
        assert quick.status_code == 200 and seconds < 0.4, seconds
        assert fast.calls == [1] and sum(slow.calls) == 2


def test_a_text_costs_its_tiers_units():
    accurate = WordCounter()
    accurate.card = ModelCard(name="llm", backend="causal_lm")
    cost = BACKENDS["causal_lm"].cost
    with make_client(predictor={"fast": WordCounter(), "accurate": accurate},
                     models=["fast", "accurate"], rate_limit=f"{cost + 2}/hour") as c:
        wait_ready(c)
        r = post(c, "/api/v1/analyze", {"text": "good", "model": "accurate"})
        assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "2"
        r = post(c, "/api/v1/analyze", {"text": "good"})
        assert r.headers["X-RateLimit-Remaining"] == "1"
        listed = c.get("/api/v1/models", headers=H).json()["data"]
        assert [m["units_per_text"] for m in listed] == [1, cost]
        r = post(c, "/classify", {"input": "good", "model": "accurate"})
        assert r.status_code == 429


def test_metrics_are_labelled_by_model_and_a_cascade_is_one_tier_among_them():
    model, _, accurate = cascade()
    with make_client(predictor={"plain": WordCounter(), "cascade": model},
                     models=["plain", "cascade"]) as c:
        wait_ready(c)
        assert post(c, "/api/v1/analyze", {"text": "meh", "model": "cascade"}).json()[
            "escalation"] == "escalated"
        assert post(c, "/api/v1/analyze", {"text": "meh"}).json()["escalation"] is None
        text = c.get("/metrics", headers=H).text
    for series in ('polarity_requests_total{endpoint="/api/v1/analyze",model="cascade",'
                   'status="200"} 1.0',
                   'polarity_requests_total{endpoint="/api/v1/analyze",model="plain",'
                   'status="200"} 1.0',
                   'polarity_escalations_total{model="cascade"} 1.0',
                   'polarity_escalations_total{model="plain"} 0.0',
                   'polarity_queue_depth{model="plain"} 0.0',
                   'polarity_predictions_total{label="NEGATIVE",model="plain"} 1.0'):
        assert series in text, series
    assert sum(accurate.calls) == 1


def test_served_models_from_settings():
    assert Settings().served == [("default", "default")]
    assert Settings(model_path="runs/x").served == [("runs/x", "runs/x")]
    assert Settings(models=["default", "big=runs/y"]).served == [("default", "default"),
                                                                 ("big", "runs/y")]
    with pytest.raises(ValueError, match="named twice"):
        Settings(models=["vader", "vader"])


def test_serve_takes_model_more_than_once(monkeypatch):
    from polarity.cli import main

    seen = {}
    monkeypatch.setattr("polarity.serve.run.serve", lambda s: seen.update(s=s))
    assert main(["serve", "--no-auth", "--model", "vader", "--model", "b=vader"]) == 0
    assert seen["s"].served == [("vader", "vader"), ("b", "vader")]
    assert main(["serve", "--no-auth", "--model", "vader"]) == 0
    assert seen["s"].model_path == "vader"
