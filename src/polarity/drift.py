"""Drift: does what the model answers now look like what it answered on validation data?

``polarity calibrate`` records a reference in the model card: the share of POSITIVE answers
and the share of confidences in each bin of ``BINS``, on the validation split. The service
keeps the last ``window`` answers and compares: the population stability index (PSI) of the
confidence distribution, and the POSITIVE share. Both are exported in ``/metrics``; a PSI
above 0.2 (the usual rule: below 0.1 stable, 0.1-0.2 some shift, above 0.2 a real change)
or a POSITIVE share 0.15 away from the reference for half an hour is worth an alert
(docs/service.md has the Prometheus rule). Drift in the inputs shows up here before anyone
can label new data and measure accuracy again.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

BINS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0000001)
MIN_ANSWERS = 100
_EPSILON = 1e-4


def histogram(confidences: Sequence[float]) -> list[float]:
    """Share of confidences in each bin ``[BINS[i], BINS[i+1])``."""
    counts = [0] * (len(BINS) - 1)
    for c in confidences:
        for i in range(len(counts)):
            if c < BINS[i + 1]:
                counts[i] += 1
                break
    total = max(1, len(confidences))
    return [n / total for n in counts]


def reference(labels: Sequence[str], confidences: Sequence[float]) -> dict:
    """The card's reference from validation answers."""
    return {"positive_share": sum(lab == "POSITIVE" for lab in labels) / max(1, len(labels)),
            "confidence_bins": list(BINS[:-1]), "confidence_share": histogram(confidences),
            "n": len(labels)}


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index between two binned distributions."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, _EPSILON), max(a, _EPSILON)
        total += (a - e) * math.log(a / e)
    return total


class DriftWatch:
    """The last ``window`` answers against the reference."""

    def __init__(self, reference: dict | None, window: int = 1000):
        self.reference = reference
        self.recent: deque[tuple[bool, float]] = deque(maxlen=window)

    def observe(self, label: str, confidence: float) -> None:
        self.recent.append((label == "POSITIVE", confidence))

    def current(self) -> dict | None:
        """PSI and shares, once there are enough answers and a reference to compare with."""
        if self.reference is None or len(self.recent) < MIN_ANSWERS:
            return None
        positive = sum(p for p, _ in self.recent) / len(self.recent)
        shares = histogram([c for _, c in self.recent])
        return {"psi": psi(self.reference["confidence_share"], shares),
                "positive_share": positive,
                "reference_positive_share": self.reference["positive_share"],
                "answers": len(self.recent)}
