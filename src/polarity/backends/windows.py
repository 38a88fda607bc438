"""Texts longer than an encoder's window, read whole, one piece at a time.

A text of at most ``max_length - 2`` tokens is read at once ([CLS] text [SEP]), as the model
was trained. A longer text is read sentence by sentence (a sentence ends at ., ! or ? before
a space, or at a line break), and a sentence longer than the window in overlapping windows
(each half a window after the previous one, the last one ending at the sentence's end). Each
piece is scored alone; the text's log-odds are the pieces' log-odds averaged with each piece
weighted by its own confidence (its absolute log-odds):

    z = sum(z_i * |z_i|) / sum(|z_i|)

so pieces that say nothing either way (z near 0) do not dilute the one that holds the
verdict, and two equally sure pieces that disagree cancel out.

Why sentences and not windows of the full width: measured on the shipped default, windows
of 126 tokens of plain description ("The parcel came on Tuesday. The box holds ...") score
+1.4 to +2.9 in log-odds each, the model reading a long stretch of any text as mildly
positive, while the same description's single sentences score -0.8 to +0.6; a closing
"Honestly, it is terrible and I regret buying it." (-3.4 alone) was outvoted when read
inside full windows and decides the text when read as a sentence. The encoder was trained
on sentences and phrases (SST-2) and tweets: a sentence is the unit it reads best.

A model whose card has a long-text reader (:mod:`polarity.backends.long_texts`) gives a text
of more than one piece the reader's log-odds instead, which use this combined value as one of
their inputs; a text of one piece is never touched by it.

Every piece is scored by itself, in batches of pieces sorted by length, so a text's pieces
and scores do not depend on the other texts in the call.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Sequence

import numpy as np

from polarity.backends.interleave import between_batches
from polarity.backends.long_texts import LongTextReader

#: ``run(input_ids, attention_mask) -> logits``, both inputs int64 ``[batch, tokens]``; a
#: model with early exits gives ``(logits, exit layer per row, 0 for the full model)``.
Runner = Callable[[np.ndarray, np.ndarray], np.ndarray | tuple[np.ndarray, np.ndarray]]
_SENTENCE_END = re.compile(r"(?<=[.!?\u2026])\s+|\s*\n\s*")


def sentences(text: str) -> list[str]:
    """A text cut after ., !, ? or an ellipsis followed by space, and at line breaks."""
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def token_windows(ids: Sequence[int], width: int) -> list[list[int]]:
    """The windows of one text's token ids (without special tokens)."""
    if len(ids) <= width:
        return [list(ids)]
    stride = max(1, width // 2)
    starts = list(range(0, len(ids) - width, stride)) + [len(ids) - width]
    return [list(ids[s:s + width]) for s in starts]


def window_log_odds(tokenizer, texts: Sequence[str], max_length: int, batch_size: int,
                    run: Runner, temperature: float = 1.0, reader: LongTextReader | None = None
                    ) -> tuple[np.ndarray, list[int], list[int | None]]:
    """Per text: calibrated log-odds of POSITIVE, how many pieces (windows) were read, and
    the early exit that answered (None: the full model, for any of its pieces)."""
    head, tail = special_tokens(tokenizer)
    width = max_length - len(head) - len(tail)
    whole, texts_pieces = _pieces(tokenizer, texts, width)
    windows, owner = [], []
    for i, pieces in enumerate(texts_pieces):
        windows += [head + piece + tail for piece in pieces]
        owner += [i] * len(pieces)
    z, left = _score_windows(windows, batch_size, run, tokenizer.pad_token_id)
    z = z / temperature
    owner_arr = np.asarray(owner)
    counts = np.bincount(owner_arr, minlength=len(texts))
    exits = _exits(owner_arr, left, len(texts))
    if counts.max() == 1:  # the common case: one window per text, nothing to combine
        combined = np.empty(len(texts))
        combined[owner_arr] = z
        return combined, counts.tolist(), exits
    weight = np.abs(z)
    numerator = np.bincount(owner_arr, weights=z * weight, minlength=len(texts))
    denominator = np.bincount(owner_arr, weights=weight, minlength=len(texts))
    single = counts == 1
    combined = np.divide(numerator, denominator, out=np.zeros(len(texts)),
                         where=denominator > 0)
    # One window: its own log-odds exactly (z*|z|/|z| would round).
    combined[single] = np.bincount(owner_arr, weights=z, minlength=len(texts))[single]
    if reader is not None:
        long = np.flatnonzero(~single)
        combined[long] = reader.log_odds([whole[i] for i in long],
                                         combined[long] * temperature) / temperature
    return combined, counts.tolist(), exits


def _exits(owner: np.ndarray, left: np.ndarray | None, n: int) -> list[int | None]:
    if left is None:
        return [None] * n
    out: list[int | None] = [None] * n
    full = set(owner[left == 0].tolist())
    for i, layer in zip(owner.tolist(), left.tolist(), strict=True):
        if i not in full:
            out[i] = max(out[i] or 0, layer)
    return out


def _pieces(tokenizer, texts: Sequence[str], width: int
            ) -> tuple[list[list[int]], list[list[list[int]]]]:
    """Per text, its token ids and those of what is scored: the whole text when it fits one
    window, otherwise its sentences, windowed when a sentence is longer than one window."""
    def encode(batch: list[str]) -> list[list[int]]:
        return tokenizer(batch, add_special_tokens=False, truncation=False,
                         verbose=False)["input_ids"]

    whole, out = encode(list(texts)), []
    for text, ids in zip(texts, whole, strict=True):
        if len(ids) <= width:
            out.append([ids])
            continue
        parts = encode(sentences(text)) or [ids]
        out.append([w for part in parts if part for w in token_windows(part, width)])
    return whole, out


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after one text ([CLS] and [SEP] for BERT,
    <s> and </s> for MPNet), read off an encoded word once per tokenizer (two tokenizer
    calls were 3% of a micro-batch's time in the service)."""
    found = _SPECIAL.get(tokenizer)
    if found is None:
        found = _SPECIAL[tokenizer] = _find_special_tokens(tokenizer)
    return found


_SPECIAL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _find_special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return full[:start], full[start + len(plain):]
    raise ValueError("cannot find where the tokenizer puts its special tokens")


def _score_windows(windows: list[list[int]], batch_size: int, run: Runner, pad_id: int
                   ) -> np.ndarray:
    """Log-odds (logit POSITIVE - logit NEGATIVE) per window, in batches sorted by length,
    and the exit layer per window when the runner gives them."""
    order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
    out = np.zeros(len(windows))
    left = None
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = max(len(windows[i]) for i in idx)
        if start:
            between_batches(sum(len(windows[i]) for i in order[start - batch_size:start]))
        ids = np.full((len(idx), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            ids[row, :len(windows[i])] = windows[i]
            mask[row, :len(windows[i])] = 1
        result = run(ids, mask)
        if isinstance(result, tuple):
            result, layers = result
            left = np.zeros(len(windows), dtype=np.int64) if left is None else left
            left[idx] = layers
        logits = np.asarray(result, dtype=np.float64)
        out[idx] = logits[:, 1] - logits[:, 0]
    return out, left


def score_texts(tokenizer, card, texts: Sequence[str], batch_size: int, run: Runner,
                reader: LongTextReader | None = None):
    """An encoder tier's scorer: the card's preprocessing, then windows (and the long-text
    reader, when the model has one); per text the log-odds before calibration (the weighted
    mean is homogeneous, so dividing the combined log-odds by the temperature equals
    combining calibrated ones), the windows read and the early exit that answered."""
    from polarity.contract import Scored
    from polarity.preprocess import apply_all

    z, windows, exits = window_log_odds(tokenizer, apply_all(texts, card.preprocessing),
                                        card.max_length, batch_size, run, reader=reader)
    return Scored(z.tolist(), windows, exits)


def text_tokens(tokenizer, card, texts: Sequence[str]) -> list[int]:
    """Tokens per text once the card's preprocessing has run: what reading it costs."""
    from polarity.preprocess import apply_all

    ids = tokenizer(apply_all(texts, card.preprocessing), add_special_tokens=False,
                    truncation=False, verbose=False)["input_ids"]
    return [len(i) for i in ids]
