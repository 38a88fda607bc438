"""VADER, the classic rule-based baseline, behind the same contract.

VADER's compound score (-1..1) is mapped to P(POSITIVE) = (compound + 1) / 2: a score,
not a calibrated probability; texts VADER finds neutral land at 0.5 and count as POSITIVE.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from polarity.contract import LoadOptions, ModelInfo, Scored
from polarity.errors import ModelNotFoundError


class LexiconBackend:
    def __init__(self):
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError as exc:
            raise ModelNotFoundError(
                "the VADER baseline needs vaderSentiment: pip install 'polarity[evaluate]'"
            ) from exc
        self._analyzer = SentimentIntensityAnalyzer()
        self.info = ModelInfo("vader", "lexicon", "3.3.2", dtype="float64", threads=1,
                              runtime="python")

    def score(self, texts: Sequence[str], batch_size: int = 32) -> Scored:
        p = np.array([(self._analyzer.polarity_scores(t)["compound"] + 1) / 2 for t in texts])
        with np.errstate(divide="ignore"):  # compound +-1: P 1 or 0, log-odds +-inf
            return Scored(np.log(p / (1 - p)).tolist())

    def explain(self, texts: Sequence[str], labels: Sequence[str], batch_size: int,
                scored: Scored) -> list[str]:
        out = []
        for text in texts:
            s = self._analyzer.polarity_scores(text)
            out.append(f"VADER lexicon: compound {s['compound']:+.3f} (pos {s['pos']:.2f}, "
                       f"neg {s['neg']:.2f}, neu {s['neu']:.2f})")
        return out


def load_lexicon_backend(folder=None, card=None, options: LoadOptions | None = None
                         ) -> LexiconBackend:
    return LexiconBackend()
