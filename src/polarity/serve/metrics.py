"""Prometheus metrics of one worker (each app has its own registry). Every series about a
model carries a ``model`` label, the served model's name (:mod:`polarity.serve.tiers`);
each tier sees them through a :class:`TierMetrics` with that label bound."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from polarity.drift import DriftWatch

#: The label naming the served model (tier) of a series.
MODEL = "model"
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ServiceMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("polarity_requests_total", "HTTP requests",
                                ["endpoint", "status", MODEL], registry=r)
        self.latency = Histogram("polarity_request_latency_seconds", "Request latency",
                                 ["endpoint", MODEL], registry=r, buckets=SECONDS)
        self.errors = Counter("polarity_errors_total", "Error responses", ["code"], registry=r)
        self.batch_size = Histogram("polarity_model_batch_size", "Texts per model call",
                                    [MODEL], registry=r,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.predictions = Counter("polarity_predictions_total", "Predictions by label",
                                   ["label", MODEL], registry=r)
        self.confidence = Histogram(
            "polarity_prediction_confidence", "Confidence of predictions (drift signal)",
            [MODEL], registry=r,
            buckets=(0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99, 1))
        self.queue_depth = Gauge("polarity_queue_depth", "Texts waiting for the model",
                                 [MODEL], registry=r)
        self.drift_psi = Gauge("polarity_drift_confidence_psi", "PSI of the recent answers' "
                               "confidences against validation (NaN: too few answers)",
                               [MODEL], registry=r)
        self.drift_positive = Gauge("polarity_drift_positive_share", "Share of POSITIVE in "
                                    "the recent answers", [MODEL], registry=r)
        self.drift_reference = Gauge("polarity_drift_reference_positive_share", "Share of "
                                     "POSITIVE on validation data", [MODEL], registry=r)
        self.escalations = Counter("polarity_escalations_total", "Texts a cascade sent to "
                                   "its accurate stage and that stage answered", [MODEL],
                                   registry=r)
        self.escalation_fallbacks = Counter(
            "polarity_escalation_fallbacks_total", "Texts a cascade should have sent on that "
            "kept the fast answer, by reason", ["reason", MODEL], registry=r)
        self.stage_latency = Histogram(
            "polarity_stage_latency_seconds", "Seconds per text in each stage of a cascade",
            ["stage", MODEL], registry=r, buckets=(*SECONDS, 30))
        self.drift_answers = Gauge("polarity_drift_window_answers", "Answers in the drift "
                                   "window", [MODEL], registry=r)

    def tier(self, name: str, drift: DriftWatch | None = None) -> TierMetrics:
        return TierMetrics(self, name, drift or DriftWatch(None))


class _Bound:
    """A labelled family with the ``model`` label bound: ``labels(x)`` is
    ``labels(x, name)``."""

    def __init__(self, family, name: str):
        self.family, self.name = family, name

    def labels(self, *values: str):
        return self.family.labels(*values, self.name)


class TierMetrics:
    """One tier's view of the service's metrics: the same names with its ``model`` label
    bound, and its own drift watch (each model has its own validation reference)."""

    def __init__(self, metrics: ServiceMetrics, name: str, drift: DriftWatch):
        self.service, self.name, self.drift = metrics, name, drift
        m = metrics
        self.batch_size = m.batch_size.labels(name)
        self.queue_depth = m.queue_depth.labels(name)
        self.confidence = m.confidence.labels(name)
        self.escalations = m.escalations.labels(name)
        self.predictions = _Bound(m.predictions, name)
        self.escalation_fallbacks = _Bound(m.escalation_fallbacks, name)
        self.stage_latency = _Bound(m.stage_latency, name)

    def observe_prediction(self, label: str, confidence: float) -> None:
        self.predictions.labels(label).inc()
        self.confidence.observe(confidence)
        self.drift.observe(label, confidence)

    def update_drift(self) -> None:
        m, name = self.service, self.name
        now = self.drift.current()
        m.drift_answers.labels(name).set(len(self.drift.recent))
        if now is None:
            m.drift_psi.labels(name).set(math.nan)
            return
        m.drift_psi.labels(name).set(now["psi"])
        m.drift_positive.labels(name).set(now["positive_share"])
        m.drift_reference.labels(name).set(now["reference_positive_share"])
