"""VADER, the classic rule-based baseline, behind the same contract.

VADER's compound score (-1..1) is mapped to P(POSITIVE) = (compound + 1) / 2: a score,
not a calibrated probability; texts VADER finds neutral land at 0.5 and count as POSITIVE.
"""

from __future__ import annotations

from collections.abc import Sequence

from polarity.contract import ModelInfo, Prediction, check_texts, from_positive_probability
from polarity.errors import ModelNotFoundError


class LexiconPredictor:
    def __init__(self):
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError as exc:
            raise ModelNotFoundError(
                "the VADER baseline needs vaderSentiment: pip install 'polarity[evaluate]'"
            ) from exc
        self._analyzer = SentimentIntensityAnalyzer()
        self.info = ModelInfo("vader", "lexicon", "3.3.2", dtype="float64", threads=1)

    def predict(self, texts: Sequence[str], batch_size: int = 32,
                include_reasoning: bool = False) -> list[Prediction]:
        texts = check_texts(texts, batch_size)
        out = []
        for text in texts:
            scores = self._analyzer.polarity_scores(text)
            reason = None
            if include_reasoning:
                reason = (f"VADER lexicon: compound {scores['compound']:+.3f} "
                          f"(pos {scores['pos']:.2f}, neg {scores['neg']:.2f}, "
                          f"neu {scores['neu']:.2f})")
            out.append(from_positive_probability((scores["compound"] + 1) / 2, reason))
        return out
