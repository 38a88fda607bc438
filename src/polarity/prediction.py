"""What every backend returns for one text, and the input checks they all share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from polarity.errors import InputError
from polarity.labels import NEGATIVE, POSITIVE


@dataclass(frozen=True, slots=True)
class Prediction:
    """One text's result. ``label`` is always POSITIVE or NEGATIVE, never neutral."""

    label: str
    """``"POSITIVE"`` or ``"NEGATIVE"``."""
    confidence: float
    """Probability of ``label``: 0.5 to 1."""
    scores: dict[str, float]
    """Probability of each label; the two sum to 1."""
    reasoning: str | None = None
    """A short explanation, only when asked for and the backend supports it."""

    def to_dict(self) -> dict:
        return asdict(self)


def from_positive_probability(p_positive: float, reasoning: str | None = None) -> Prediction:
    """Build a :class:`Prediction` from P(POSITIVE); ties go to POSITIVE."""
    p = min(max(float(p_positive), 0.0), 1.0)
    label = POSITIVE if p >= 0.5 else NEGATIVE
    scores = {POSITIVE: p, NEGATIVE: 1.0 - p}
    return Prediction(label=label, confidence=scores[label], scores=scores, reasoning=reasoning)


def check_texts(texts: Sequence[str] | str) -> list[str]:
    """Validate predictor input: a non-empty list of non-blank strings.

    A single string is accepted as a batch of one.
    """
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence):
        raise InputError(f"texts must be a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise InputError("texts is empty: pass at least one text")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"text #{i} is {type(text).__name__}, not a string")
        if not text.strip():
            raise InputError(f"text #{i} is empty or only whitespace")
    return list(texts)
