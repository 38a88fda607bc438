"""``polarity augment``: unlabelled texts for distillation, made from labelled ones.

A student learns a teacher's function best from many inputs near the data, labelled by the
teacher itself (Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple
Neural Networks"). Four ways to make them, taken in turn:

- ``span``: a run of consecutive words of one text (n-gram sampling);
- ``dropout``: a text with each word dropped with probability 0.1 (at least one);
- ``join``: the first half of one text followed by the second half of another;
- ``replace``: a text with each word replaced, with probability 0.1 (at least one), by a word
  drawn from the corpus in proportion to its frequency.

The output is deterministic for a seed and an input order, holds no duplicate, and never a
text that is (after lower-casing and collapsing spaces) in any file passed to ``exclude``:
validation, test and evaluation texts stay unseen by the student.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence

DROP_P = 0.1
REPLACE_P = 0.1


def normalise(text: str) -> str:
    """The key under which two texts count as the same."""
    return " ".join(text.lower().split())


def _span(rng: random.Random, words: list[str], _: Callable) -> list[str]:
    if len(words) < 3:
        return []
    length = rng.randint(max(2, len(words) // 3), len(words) - 1)
    start = rng.randrange(len(words) - length + 1)
    return words[start:start + length]


def _dropout(rng: random.Random, words: list[str], _: Callable) -> list[str]:
    if len(words) < 3:
        return []
    keep = [w for w in words if rng.random() >= DROP_P]
    if len(keep) == len(words):
        del keep[rng.randrange(len(keep))]
    return keep if len(keep) >= 2 else []


def _join(rng: random.Random, words: list[str], other: Callable) -> list[str]:
    second = other()
    if len(words) < 2 or len(second) < 2:
        return []
    return words[:len(words) // 2] + second[len(second) // 2:]


def _replace(rng: random.Random, words: list[str], draw: Callable) -> list[str]:
    if len(words) < 2:
        return []
    out = [draw() if rng.random() < REPLACE_P else w for w in words]
    if out == words:
        out[rng.randrange(len(out))] = draw()
    return out


OPERATIONS = {"span": _span, "dropout": _dropout, "join": _join, "replace": _replace}


def augment(texts: Sequence[str], count: int, seed: int = 0,
            exclude: Iterable[str] = ()) -> list[dict]:
    """``count`` new texts (fewer if the input cannot give that many distinct ones), each
    ``{"text", "source": "augment/<operation>"}``."""
    if not texts:
        return []
    rng = random.Random(seed)
    tokenised = [t.split() for t in texts]
    vocabulary = [w for words in tokenised for w in words]  # a word as often as it occurs
    seen = {normalise(t) for t in exclude} | {normalise(t) for t in texts}

    def draw_word() -> str:
        return vocabulary[rng.randrange(len(vocabulary))]

    def other_text() -> list[str]:
        return tokenised[rng.randrange(len(tokenised))]

    helpers = {"span": None, "dropout": None, "join": other_text, "replace": draw_word}
    names = list(OPERATIONS)
    out: list[dict] = []
    attempts = 0
    while len(out) < count and attempts < count * 20:
        name = names[attempts % len(names)]
        attempts += 1
        words = OPERATIONS[name](rng, tokenised[rng.randrange(len(tokenised))], helpers[name])
        text = " ".join(words)
        key = normalise(text)
        if not key or key in seen:
            continue
        seen.add(key)
        out.append({"text": text, "source": f"augment/{name}"})
    return out
