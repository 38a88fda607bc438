"""Prometheus metrics of one worker (each app has its own registry)."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from polarity.drift import DriftWatch


class ServiceMetrics:
    def __init__(self, drift: DriftWatch | None = None):
        self.drift = drift or DriftWatch(None)
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("polarity_requests_total", "HTTP requests",
                                ["endpoint", "status"], registry=r)
        self.latency = Histogram(
            "polarity_request_latency_seconds", "Request latency", ["endpoint"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.errors = Counter("polarity_errors_total", "Error responses", ["code"], registry=r)
        self.batch_size = Histogram("polarity_model_batch_size", "Texts per model call",
                                    registry=r, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.predictions = Counter("polarity_predictions_total", "Predictions by label",
                                   ["label"], registry=r)
        self.confidence = Histogram(
            "polarity_prediction_confidence", "Confidence of predictions (drift signal)",
            registry=r, buckets=(0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99, 1))
        self.queue_depth = Gauge("polarity_queue_depth", "Texts waiting for the model",
                                 registry=r)
        self.drift_psi = Gauge("polarity_drift_confidence_psi", "PSI of the recent answers' "
                               "confidences against validation (NaN: too few answers)",
                               registry=r)
        self.drift_positive = Gauge("polarity_drift_positive_share", "Share of POSITIVE in "
                                    "the recent answers", registry=r)
        self.drift_reference = Gauge("polarity_drift_reference_positive_share", "Share of "
                                     "POSITIVE on validation data", registry=r)
        self.escalations = Counter("polarity_escalations_total", "Texts a cascade sent to "
                                   "its accurate stage and that stage answered", registry=r)
        self.escalation_fallbacks = Counter(
            "polarity_escalation_fallbacks_total", "Texts a cascade should have sent on that "
            "kept the fast answer, by reason", ["reason"], registry=r)
        self.stage_latency = Histogram(
            "polarity_stage_latency_seconds", "Seconds per text in each stage of a cascade",
            ["stage"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.drift_answers = Gauge("polarity_drift_window_answers", "Answers in the drift "
                                   "window", registry=r)

    def observe_prediction(self, label: str, confidence: float) -> None:
        self.predictions.labels(label).inc()
        self.confidence.observe(confidence)
        self.drift.observe(label, confidence)

    def update_drift(self) -> None:
        now = self.drift.current()
        self.drift_answers.set(len(self.drift.recent))
        if now is None:
            self.drift_psi.set(math.nan)
            return
        self.drift_psi.set(now["psi"])
        self.drift_positive.set(now["positive_share"])
        self.drift_reference.set(now["reference_positive_share"])
