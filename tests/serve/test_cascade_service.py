"""A cascade in the service: the accurate stage in its own bounded lane, escalations capped,
every fall-back said in the answer and counted in /metrics."""

import time
from concurrent.futures import ThreadPoolExecutor

from serve_helpers import KEY, make_client, wait_ready

from polarity.backends.cascade import CascadeBackend
from polarity.classifier import Classifier
from polarity.contract import ModelInfo, Scored
from polarity.modelcard import ModelCard

H = {"X-API-Key": KEY}


class Words:
    """A stand-in backend: sure about 'good' and 'bad', unsure about 'meh' (the fast stage),
    or sure about everything after ``delay`` seconds (the accurate stage)."""

    def __init__(self, name: str, unsure: float, delay: float = 0.0):
        self.info = ModelInfo(name, "test", "0")
        self.unsure, self.delay, self.calls = unsure, delay, []

    def score(self, texts, batch_size):
        self.calls.append(len(texts))
        time.sleep(self.delay)
        return Scored([4.0 if "good" in t else self.unsure if "meh" in t else -4.0
                       for t in texts])


def cascade(delay: float = 0.0):
    fast, accurate = Words("fast", unsure=-0.2), Words("accurate", unsure=3.0, delay=delay)
    card = ModelCard(name="test-cascade", backend="cascade",
                     extra={"stages": ["fast", "accurate"], "threshold": 0.8})
    backend = CascadeBackend(Classifier(fast, tier="fast"), Classifier(accurate,
                                                                        tier="accurate"),
                             0.8, card)
    return Classifier(backend, tier="cascade"), fast, accurate


def analyze(client, text):
    return client.post("/api/v1/analyze", json={"text": text}, headers=H).json()


def test_sure_texts_stay_fast_and_unsure_ones_go_on():
    model, fast, accurate = cascade()
    with make_client(predictor=model) as c:
        wait_ready(c)
        sure, unsure = analyze(c, "good stuff"), analyze(c, "meh stuff")
        assert (sure["tier"], sure["escalation"]) == ("fast", "not_needed")
        assert (unsure["tier"], unsure["escalation"]) == ("accurate", "escalated")
        assert unsure["predicted_sentiment"] == "POSITIVE"  # the accurate stage's answer
        batch = c.post("/api/v1/analyze/batch", json={"texts": ["bad", "meh", "good"]},
                       headers=H).json()["results"]
        assert [r["tier"] for r in batch] == ["fast", "accurate", "fast"]
        metrics = c.get("/metrics", headers=H).text
        assert 'polarity_escalations_total{model="default"} 2.0' in metrics
        assert ('polarity_stage_latency_seconds_count{model="default",stage="accurate"} 2.0'
                in metrics)
        assert sum(accurate.calls) == 2  # only the unsure texts reached the accurate stage


def test_a_full_escalation_queue_keeps_the_fast_answer_and_says_so():
    model, _, accurate = cascade(delay=0.6)
    with make_client(predictor=model, max_escalation_queue=1) as c:
        wait_ready(c)
        with ThreadPoolExecutor(4) as pool:
            hard = [pool.submit(analyze, c, f"meh {i}") for i in range(3)]
            time.sleep(0.2)  # the accurate lane is busy now
            started = time.perf_counter()
            easy = analyze(c, "good")
            easy_seconds = time.perf_counter() - started
            answers = [f.result() for f in hard]
        assert easy["tier"] == "fast" and easy_seconds < 0.5  # not stalled behind hard texts
        assert sorted(a["escalation"] for a in answers) == ["escalated", "queue_full",
                                                            "queue_full"]
        for a in answers:
            if a["escalation"] == "queue_full":
                assert a["tier"] == "fast" and a["predicted_sentiment"] == "NEGATIVE"
        assert 'polarity_escalation_fallbacks_total{model="default",reason="queue_full"} 2.0' in \
            c.get("/metrics", headers=H).text


def test_the_escalation_rate_cap_falls_back_to_the_fast_answer():
    model, _, _ = cascade()
    with make_client(predictor=model, max_escalations_per_s=0.01) as c:
        wait_ready(c)
        first, second = analyze(c, "meh one"), analyze(c, "meh two")
        assert first["escalation"] == "escalated"
        assert (second["tier"], second["escalation"]) == ("fast", "rate_capped")


def test_the_openapi_schema_names_tier_and_escalation():
    model, _, _ = cascade()
    with make_client(predictor=model) as c:
        spec = c.get("/openapi.json", headers=H).json()
        schema = spec["components"]["schemas"]["AnalyzeResponse"]
        assert {"tier", "escalation"} <= set(schema["properties"])
