"""The two labels and the one place that turns raw label values into them."""

from __future__ import annotations

NEGATIVE = "NEGATIVE"
POSITIVE = "POSITIVE"
#: Index order used by every model head: index 0 is NEGATIVE, index 1 is POSITIVE.
LABELS: tuple[str, str] = (NEGATIVE, POSITIVE)

_POSITIVE_VALUES = {"positive", "pos", "1", "4", "true", "yes", "p"}
_NEGATIVE_VALUES = {"negative", "neg", "0", "false", "no", "n"}


class LabelError(ValueError):
    """A label value that is neither positive nor negative."""


def parse_label(value: object) -> str:
    """Map a raw label (``POSITIVE``, ``pos``, ``1``, ``0``, ``True`` ...) to a label name.

    Raises :class:`LabelError` for anything else, neutral values included.
    """
    if isinstance(value, bool):
        return POSITIVE if value else NEGATIVE
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    key = str(value).strip().lower()
    if key in _POSITIVE_VALUES:
        return POSITIVE
    if key in _NEGATIVE_VALUES:
        return NEGATIVE
    raise LabelError(f"label {value!r} is not positive or negative (use POSITIVE/NEGATIVE or 1/0)")


def label_index(label: str) -> int:
    """0 for NEGATIVE, 1 for POSITIVE."""
    return LABELS.index(label)
