"""Texts longer than an encoder's window, read whole, and scored one window at a time.

A text of at most ``max_length - 2`` tokens is one window ([CLS] text [SEP]), as before.
A longer text is cut into windows of that many tokens, each starting half a window after
the previous one and the last one ending at the text's end, so every token is read, most of
them twice, and none at a window's edge only. Each window is scored alone; the text's
log-odds are the windows' log-odds averaged with each window weighted by its own
confidence (its absolute log-odds):

    z = sum(z_i * |z_i|) / sum(|z_i|)

so a window that says nothing either way (z near 0) does not dilute the one that holds the
verdict, as a plain mean would for a long review whose verdict is its last sentence; two
equally sure windows that disagree cancel out.

Every window is scored by itself, in batches of windows sorted by length, so a text's
windows and scores do not depend on the other texts in the call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

#: ``run(input_ids, attention_mask) -> logits``: both inputs int64 ``[batch, tokens]``.
Runner = Callable[[np.ndarray, np.ndarray], np.ndarray]


def token_windows(ids: Sequence[int], width: int) -> list[list[int]]:
    """The windows of one text's token ids (without special tokens)."""
    if len(ids) <= width:
        return [list(ids)]
    stride = max(1, width // 2)
    starts = list(range(0, len(ids) - width, stride)) + [len(ids) - width]
    return [list(ids[s:s + width]) for s in starts]


def window_log_odds(tokenizer, texts: Sequence[str], max_length: int, batch_size: int,
                    run: Runner, temperature: float = 1.0) -> tuple[np.ndarray, list[int]]:
    """Per text: calibrated log-odds of POSITIVE, and how many windows were read."""
    encoded = tokenizer(list(texts), add_special_tokens=False, truncation=False,
                        verbose=False)["input_ids"]
    head, tail = special_tokens(tokenizer)
    width = max_length - len(head) - len(tail)
    windows, owner = [], []
    for i, ids in enumerate(encoded):
        for window in token_windows(ids, width):
            windows.append(head + window + tail)
            owner.append(i)
    z = _score_windows(windows, batch_size, run, tokenizer.pad_token_id) / temperature
    owner_arr = np.asarray(owner)
    counts = np.bincount(owner_arr, minlength=len(texts))
    if counts.max() == 1:  # the common case: one window per text, nothing to combine
        combined = np.empty(len(texts))
        combined[owner_arr] = z
        return combined, counts.tolist()
    weight = np.abs(z)
    numerator = np.bincount(owner_arr, weights=z * weight, minlength=len(texts))
    denominator = np.bincount(owner_arr, weights=weight, minlength=len(texts))
    single = counts == 1
    combined = np.divide(numerator, denominator, out=np.zeros(len(texts)),
                         where=denominator > 0)
    # One window: its own log-odds exactly (z*|z|/|z| would round).
    combined[single] = np.bincount(owner_arr, weights=z, minlength=len(texts))[single]
    return combined, counts.tolist()


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after one text ([CLS] and [SEP] for BERT,
    <s> and </s> for MPNet), read off an encoded word."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return full[:start], full[start + len(plain):]
    raise ValueError("cannot find where the tokenizer puts its special tokens")


def _score_windows(windows: list[list[int]], batch_size: int, run: Runner, pad_id: int
                   ) -> np.ndarray:
    """Log-odds (logit POSITIVE - logit NEGATIVE) per window, in batches sorted by length."""
    order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
    out = np.zeros(len(windows))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = max(len(windows[i]) for i in idx)
        ids = np.full((len(idx), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            ids[row, :len(windows[i])] = windows[i]
            mask[row, :len(windows[i])] = 1
        logits = np.asarray(run(ids, mask), dtype=np.float64)
        out[idx] = logits[:, 1] - logits[:, 0]
    return out


def positive_probability(log_odds: np.ndarray) -> list[float]:
    """sigmoid, stable for large magnitudes."""
    return (0.5 * (1.0 + np.tanh(0.5 * np.asarray(log_odds, dtype=np.float64)))).tolist()


def score_texts(tokenizer, card, texts: Sequence[str], batch_size: int, run: Runner
                ) -> tuple[list[float], list[int]]:
    """An encoder tier's scorer: the card's preprocessing, then windows; returns P(POSITIVE)
    and the windows read, per text."""
    from polarity.preprocess import apply_all

    z, windows = window_log_odds(tokenizer, apply_all(texts, card.preprocessing),
                                 card.max_length, batch_size, run, card.temperature)
    return positive_probability(z), windows
