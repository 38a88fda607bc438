"""The contract, enforced once: every loaded backend is wrapped in a :class:`Classifier`,
which checks the input, applies the model card's temperature, applies the one label rule and
builds each :class:`~polarity.contract.Prediction`. Backends only score texts that are
already checked (:class:`~polarity.contract.Backend`), so no backend can skip a check or
calibrate differently.

Reasons come from the backend's own ``explain`` when it has one (the causal LM writes one;
VADER reports its lexicon scores), otherwise from occlusion over this classifier's own
calibrated scores (:mod:`polarity.backends.occlusion`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from polarity.backends.occlusion import explain_by_occlusion
from polarity.contract import (
    Backend,
    ModelInfo,
    Prediction,
    Scored,
    check_texts,
    from_positive_probability,
    label_of,
    probability,
)


class Classifier:
    """A :class:`~polarity.contract.Predictor` over one backend."""

    def __init__(self, backend: Backend, temperature: float = 1.0, tier: str | None = None,
                 card=None):
        self.backend = backend
        self.temperature = float(temperature)
        self.tier = tier
        self.card = card
        self.info: ModelInfo = backend.info
        self.load_seconds = getattr(backend, "load_seconds", None)

    def calibrated(self, texts: Sequence[str], batch_size: int = 32
                   ) -> tuple[Scored, np.ndarray]:
        """The backend's result for checked ``texts`` and the calibrated log-odds."""
        result = self.backend.score(texts, batch_size)
        z = np.asarray(result.log_odds, dtype=np.float64)
        return result, (z if result.calibrated else z / self.temperature)

    def scored(self, texts: Sequence[str], batch_size: int = 32) -> tuple[Scored, list[float]]:
        """The backend's result for checked ``texts`` and the calibrated P(POSITIVE)."""
        result, z = self.calibrated(texts, batch_size)
        return result, probability(z)

    def log_odds(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Log-odds of POSITIVE before the temperature: what ``polarity calibrate`` fits."""
        texts = check_texts(texts, batch_size)
        return np.asarray(self.backend.score(texts, batch_size).log_odds, dtype=np.float64)

    def work(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text once preprocessed, what scoring it costs (the backend's count when
        it has one, else a quarter of its characters)."""
        count = getattr(self.backend, "work", None)
        return count(texts) if count else [len(t) // 4 + 1 for t in texts]

    def positive_probabilities(self, texts: Sequence[str], batch_size: int = 32) -> list[float]:
        return self.scored(check_texts(texts, batch_size), batch_size)[1]

    def score(self, texts: Sequence[str], batch_size: int = 32
              ) -> tuple[list[float], list[int], list[int | None]]:
        """Calibrated P(POSITIVE), windows read and the early exit that answered, per text."""
        result, probs = self.scored(check_texts(texts, batch_size), batch_size)
        n = len(probs)
        return probs, list(result.windows or [1] * n), list(result.exit_layers or [None] * n)

    def predict(self, texts: Sequence[str], batch_size: int = 32,
                include_reasoning: bool = False) -> list[Prediction]:
        texts = check_texts(texts, batch_size)
        result, probs = self.scored(texts, batch_size)
        n = len(texts)
        reasons: list[str | None] = [None] * n
        if include_reasoning:
            reasons = self._reasons(texts, probs, result, batch_size)
        windows = result.windows or [1] * n
        exits = result.exit_layers or [None] * n
        tiers = result.tiers or [self.tier] * n
        escalations = result.escalations or [None] * n
        return [from_positive_probability(p, r or None, w, e, t, x) for p, r, w, e, t, x
                in zip(probs, reasons, windows, exits, tiers, escalations, strict=True)]

    def _reasons(self, texts: list[str], probs: list[float], result: Scored,
                 batch_size: int) -> list[str | None]:
        explain = getattr(self.backend, "explain", None)
        if explain is not None:
            return explain(texts, [label_of(p) for p in probs], batch_size, result)

        def score(variants: Sequence[str], size: int):
            return self.scored(variants, size)[1], None, None

        return [explain_by_occlusion(t, p, score, batch_size) for t, p in zip(texts, probs,
                                                                              strict=True)]

