"""What every backend returns for one text, and the input checks they all share."""

from __future__ import annotations

import re
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
    windows: int = 1
    """How many windows of the model's token limit the text was read in (1 unless it is
    longer than one window; see :mod:`polarity.backends.windows`)."""

    def to_dict(self) -> dict:
        return asdict(self)


def label_of(p_positive: float) -> str:
    """The one label rule: POSITIVE from P(POSITIVE) 0.5 up (ties go to POSITIVE)."""
    return POSITIVE if p_positive >= 0.5 else NEGATIVE


def from_positive_probability(p_positive: float, reasoning: str | None = None,
                              windows: int = 1) -> Prediction:
    """Build a :class:`Prediction` from P(POSITIVE)."""
    p = min(max(float(p_positive), 0.0), 1.0)
    label = label_of(p)
    scores = {POSITIVE: p, NEGATIVE: 1.0 - p}
    return Prediction(label=label, confidence=scores[label], scores=scores, reasoning=reasoning,
                      windows=windows)


# One character worth reading: not whitespace, not a control character (Cc), not an
# invisible format character (Cf: zero-width spaces and joiners, the byte-order mark,
# direction marks). Spelled out, for the Basic Multilingual Plane, because the API schema
# uses the same pattern and regex engines (pydantic's, hypothesis's, a client's) disagree
# on classes such as \S; tests/test_predictor.py checks it against unicodedata.
NOT_BLANK = (r"[^\x00-\x20\x7f-\xa0\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891"
             r"\u08e2\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f"
             r"\u3000\ufeff\ufff9-\ufffb]")
_NOT_BLANK = re.compile(NOT_BLANK)


def is_blank(text: str) -> bool:
    """True when a text holds nothing to read: only whitespace, control characters or
    invisible format characters."""
    return _NOT_BLANK.search(text) is None


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
        if is_blank(text):
            raise InputError(f"text #{i} is empty or only whitespace, control or zero-width "
                             "characters")
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
