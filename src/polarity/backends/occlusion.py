"""Honest explanations without generation: which words moved the decision most.

Each word is removed in turn and the text scored again; the words whose removal lowers
the predicted label's probability most are the ones that pushed the model towards it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from polarity.contract import label_of

MAX_WORDS = 48
MIN_SUPPORT = 0.1  # log-odds; about a 10% change in the odds


Scorer = Callable[[Sequence[str], int], tuple[list[float], list[int], list[int | None]]]
"""``score(texts, batch_size) -> (calibrated P(POSITIVE), ...)`` per text."""


def explain_by_occlusion(
    text: str,
    p_positive: float,
    score: Scorer,
    batch_size: int = 32,
    top_k: int = 3,
) -> str:
    """A one-line reason naming the words that supported the predicted label."""
    words = text.split()[:MAX_WORDS]
    label = label_of(p_positive)
    positive = label == "POSITIVE"
    if len(words) < 2:
        return f"{label}: the whole text is a single word, no finer attribution."
    variants = [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))]
    probs = score(variants, batch_size)[0]
    # Support for the label = how much its log-odds drop without the word. Log-odds, not
    # probability: at 0.998 a decisive word moves the probability by 0.001 and would be
    # invisible, while its log-odds change is as large as in an uncertain text.
    full = _log_odds(p_positive)
    support = [(full - _log_odds(p)) if positive else (_log_odds(p) - full) for p in probs]
    ranked = sorted(range(len(words)), key=lambda i: support[i], reverse=True)
    top = [i for i in ranked[:top_k] if support[i] > MIN_SUPPORT]
    if not top:
        return f"{label}: no single word changes the prediction much; the tone is spread out."
    cues = ", ".join(f"'{words[i].strip('.,!?;:')}' ({support[i]:.2f})" for i in top)
    return f"{label}: words that pushed towards it most (drop in log-odds without each): {cues}."


def _log_odds(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))
