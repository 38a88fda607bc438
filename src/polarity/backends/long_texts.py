"""How an encoder tier reads a text longer than one window: the windows' verdict beside a
bag of word pieces and pairs of them, weighed against each other by a learned rule.

Why: on full-length movie reviews the windows' confidence-weighted mean
(:mod:`polarity.backends.windows`) scores 88% (IMDB validation), and no rule over the window
scores or their embeddings did better (a logistic model over 17 statistics of the window
scores: 87.7; over the windows' mean, max and last embeddings: 88.5). A review's verdict is
spread over the words it chooses, which a model of sentences reads one at a time; a bag of
word-piece unigrams and bigrams with naive-Bayes weights (Wang & Manning 2012) reads them
together (91.7 alone) and the two together reach 92.5 (docs/long_texts.md).

Each text's word pieces (the encoder's own tokenizer, after the card's preprocessing) and
their adjacent pairs are hashed into ``2**bits`` buckets; a text's lexical score is the sum of
its distinct buckets' weights over the square root of their count. Its log-odds are

    lexical * score + windows * z_windows + bias

with ``z_windows`` the windows' combined log-odds. The coefficients are stored already
multiplied by the card's temperature, so the contract's one division by it gives the
calibrated value the rule was fitted for. A text of one window never comes here: short texts
keep their answers exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polarity.registry import LONG_TEXTS_FILE

_PAIR_A, _PAIR_B = 1_000_003, 7_919  # bigram hash: two primes, so (a, b) != (b, a)


def buckets(ids: Sequence[int], bits: int) -> np.ndarray:
    """The distinct hashed unigrams and bigrams of one text's token ids, sorted."""
    return distinct_buckets([ids], bits)[1]


def distinct_buckets(ids: Sequence[Sequence[int]], bits: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(text index, bucket) of each distinct hashed unigram and bigram of each text, sorted
    by text then bucket: one sort for all texts instead of a unique per text."""
    lengths = np.fromiter((len(t) for t in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter((i for t in ids for i in t), dtype=np.int64, count=int(lengths.sum()))
    owner = np.repeat(np.arange(len(ids)), lengths)
    same = owner[1:] == owner[:-1]  # a bigram never spans two texts
    pairs = (flat[:-1] * _PAIR_A + flat[1:] * _PAIR_B + 1)[same]
    found = np.concatenate([flat, pairs]) % (1 << bits)
    keys = np.unique(np.concatenate([owner, owner[:-1][same]]) * (1 << bits) + found)
    return keys >> bits, keys & ((1 << bits) - 1)


@dataclass(frozen=True)
class LongTextReader:
    weights: np.ndarray
    """One weight per bucket (``2**bits`` of them)."""
    lexical: float
    windows: float
    bias: float

    @property
    def bits(self) -> int:
        return int(self.weights.size).bit_length() - 1

    def lexical_scores(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        """Per text: its distinct buckets' weights summed, over the root of their count."""
        if not len(ids):
            return np.zeros(0)
        owner, found = distinct_buckets(ids, self.bits)
        total = np.bincount(owner, weights=self.weights[found].astype(np.float64),
                            minlength=len(ids))
        count = np.bincount(owner, minlength=len(ids))
        return np.divide(total, np.sqrt(count), out=np.zeros(len(ids)), where=count > 0)

    def log_odds(self, ids: Sequence[Sequence[int]], windows_z: np.ndarray) -> np.ndarray:
        """Per text: log-odds before the card's temperature."""
        return self.lexical * self.lexical_scores(ids) + self.windows * windows_z + self.bias

    def save(self, folder: Path) -> None:
        from safetensors.numpy import save

        # Written as bytes, so the file gets the umask's mode like the rest of the folder
        # (safetensors' own writer makes it private to the user: unreadable in an image).
        (folder / LONG_TEXTS_FILE).write_bytes(save({"weights": self.weights.astype(
            np.float16)}))

    def section(self, **more) -> dict:
        """The card's ``extra["long_texts"]``."""
        return {"file": LONG_TEXTS_FILE, "bits": self.bits, "lexical": self.lexical,
                "windows": self.windows, "bias": self.bias, **more}


def reader_file(card) -> str | None:
    """The file the card names for its long-text reader, or None when it has none."""
    spec = card.extra.get("long_texts")
    return spec.get("file", LONG_TEXTS_FILE) if spec else None


def load_reader(folder: Path, card) -> LongTextReader | None:
    """The folder's long-text reader, or None when its card has none."""
    name = reader_file(card)
    if name is None:
        return None
    from safetensors.numpy import load_file

    spec = card.extra["long_texts"]
    path = folder / name
    if not path.is_file():
        from polarity.errors import ModelNotFoundError

        raise ModelNotFoundError(f"{folder}: the card names a long-text reader but "
                                 f"{path.name} is missing; copy the whole model folder")
    weights = load_file(str(path))["weights"].astype(np.float32)
    if weights.size != 1 << int(spec["bits"]):
        raise ModelNotFoundError(f"{path}: {weights.size} weights, the card says "
                                 f"2**{spec['bits']}")
    return LongTextReader(weights, float(spec["lexical"]), float(spec["windows"]),
                          float(spec["bias"]))
