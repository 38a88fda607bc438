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


def check_texts(texts: Sequence[str] | str, batch_size: int = 1) -> list[str]:
    """Validate predictor input: a non-empty list of non-blank, encodable strings, and a
    positive batch size.

    A single string is accepted as a batch of one.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
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
        if not text.isascii():
            _check_encodable(i, text)
    return list(texts)


def _check_encodable(i: int, text: str) -> None:
    # A lone UTF-16 surrogate (half of an emoji cut off by a UTF-16 truncation, or bytes
    # decoded with surrogateescape) cannot be encoded, and tokenizers fail on it deep inside.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"text #{i} is not valid Unicode: a lone surrogate "
                         f"{text[exc.start]!a} at character {exc.start}; send UTF-8 text "
                         "(a cut-off emoji is a common cause)") from None
