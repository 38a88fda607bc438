"""Temperature scaling: one scalar T divides the logit so that confidences match accuracy.

The log-odds a model gives before its temperature (``Classifier.log_odds``) are fitted by
minimising the negative log-likelihood.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from polarity.evaluate.metrics import nll
from polarity.labels import POSITIVE


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits / temperature))


def fit_temperature(logits: Sequence[float], gold: Sequence[str], lo: float = 0.05,
                    hi: float = 20.0, iterations: int = 80) -> float:
    """T minimising NLL, by golden-section search on log T (NLL is unimodal in T)."""
    z = np.asarray(logits, dtype=float)
    y = list(gold)
    if not any(g == POSITIVE for g in y) or all(g == POSITIVE for g in y):
        raise ValueError("temperature fitting needs both labels in the validation data")

    def loss(log_t: float) -> float:
        return nll(y, apply_temperature(z, math.exp(log_t)))

    a, b = math.log(lo), math.log(hi)
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(iterations):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return float(math.exp((a + b) / 2))
