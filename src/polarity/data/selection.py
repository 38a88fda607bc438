"""Which texts a slow teacher should label first.

A teacher that scores a few texts a second cannot label every text a student could learn
from, so a labelling job takes texts in an order that puts its time where it pays, and can
be stopped at any point with the most useful labels done:

1. a random sample first (``sample`` texts, seeded): an unbiased picture of where the new
   teacher disagrees with today's models, which is what justifies the order of the rest;
2. then every other text, most informative first: texts today's teachers are unsure of,
   disagree on, or get wrong against a gold label, and texts with emoji (a set the student
   is measured on), with random order among equals.

Within each ``chunk`` of the output (one shard of ``polarity batch``) rows are sorted by
length, so that a runtime which batches texts of one token length finds many together.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from polarity.labels import POSITIVE

#: Texts shorter than this weigh less, in proportion: a two-word span of a longer text
#: ("for a") is uncertain for every teacher because it says nothing, not because a better
#: teacher would settle it, and the student is judged on whole sentences.
FULL_WEIGHT_CHARS = 40


def informativeness(p_teachers: Sequence[float], gold: str | None, chars: int,
                    has_emoji: bool = False) -> float:
    """How much a new teacher's label of a text is expected to add, 0 to 1 (emoji: 1).

    The largest of today's teachers' mean uncertainty (1 at 0.5, 0 at 0 or 1), their
    disagreement (the spread of their probabilities) and a gold label they get wrong,
    weighed down for texts under :data:`FULL_WEIGHT_CHARS` characters."""
    if has_emoji:
        return 1.0
    mean = sum(p_teachers) / len(p_teachers)
    uncertain = 1.0 - abs(2.0 * mean - 1.0)
    spread = max(p_teachers) - min(p_teachers)
    wrong = 0.0 if gold is None else float((mean >= 0.5) != (gold == POSITIVE))
    return max(uncertain, spread, wrong) * min(1.0, chars / FULL_WEIGHT_CHARS)


def labelling_order(scores: Sequence[float], sample: int, seed: int = 0) -> list[int]:
    """Indices in labelling order: ``sample`` at random, then the rest by ``scores``
    descending (ties in random order)."""
    rng = random.Random(seed)
    order = list(range(len(scores)))
    rng.shuffle(order)
    head, rest = order[:sample], order[sample:]
    rest.sort(key=lambda i: -scores[i])  # stable: ties keep the random order
    return head + rest


def length_sorted_chunks(indices: Sequence[int], lengths: Sequence[int], chunk: int
                         ) -> list[int]:
    """``indices`` with each run of ``chunk`` sorted by length: the labelling order is kept
    from chunk to chunk, and a chunk's texts of one length sit together."""
    out: list[int] = []
    for start in range(0, len(indices), chunk):
        out += sorted(indices[start:start + chunk], key=lambda i: lengths[i])
    return out
