"""``polarity fit-long``: fit a trained encoder model's long-text reader
(:mod:`polarity.backends.long_texts`) on long labelled texts, and store it in the model.

The rule that weighs the bag against the windows is fitted on ``stack_rows`` long texts drawn
at random (seeded), with bucket weights fitted on all the other training texts (naive-Bayes
log-count ratios, then a logistic regression on the ratio-scaled, length-normalised buckets),
so it learns how far to trust the weights on texts they have not seen; the weights shipped are
then fitted on every training text, short ones included (a short review's words are as
telling: the bag alone on validation 0.907 -> 0.915, with 2**21 buckets). The rule is a
logistic regression too, so its log-odds are calibrated where it was fitted; the validation
file reports accuracy and ECE before (the windows alone) and after, on its texts longer than
one window (the reader never sees the others).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from polarity.backends.long_texts import LongTextReader, distinct_buckets
from polarity.errors import InputError
from polarity.labels import POSITIVE, parse_label

STACK_ROWS = 4000
"""Long training texts kept apart to fit how far the bag is trusted."""
BITS = 21
"""2**BITS hashed buckets."""


def fit_long_reader(model_dir: str | Path, train_file: str | Path, val_file: str | Path,
                    stack_rows: int = STACK_ROWS, bits: int = BITS, c: float = 100.0,
                    seed: int = 0, progress: bool = True) -> dict:
    """Fit, write ``long_texts.safetensors`` and the card's section into ``model_dir``, and
    return the section (with validation figures)."""
    from polarity.modelcard import read_card
    from polarity.predictor import load_classifier

    started = time.perf_counter()
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    if card.backend != "encoder":
        raise InputError(f"{model_dir} is a {card.backend!r} model; the long-text reader is "
                         "for the encoder tier's folders (the causal LM reads 2,048 tokens)")
    model = load_classifier(model_dir)
    model.backend.long_reader = None  # the windows alone: what the rule weighs the bag against
    texts, ids, gold, long = _rows(model, train_file)
    if len(long) <= stack_rows + 100:
        raise InputError(f"{train_file}: {len(long)} texts longer than one window; the "
                         f"reader needs more than stack_rows ({stack_rows}) + 100")
    # Prepared files are grouped by label: the rule's rows are a seeded random sample.
    held = np.random.default_rng(seed).permutation(long)[:stack_rows]
    rest = np.setdiff1d(np.arange(len(texts)), held)
    unseen, unseen_bias = _bucket_weights([ids[i] for i in rest], gold[rest], bits, c)
    z = _windows(model, [texts[i] for i in held], f"{train_file} (rule rows)", progress)
    rule = _rule(unseen, [ids[i] for i in held], gold[held], z, unseen_bias)
    # The rule learnt how far to trust weights on reviews they have not seen; the weights
    # it ships with are fitted on every training review.
    weights, lexical_bias = _bucket_weights(ids, gold, bits, c)
    reader = LongTextReader(weights, rule[0] * card.temperature, rule[1] * card.temperature,
                            (rule[0] * lexical_bias + rule[2]) * card.temperature)
    val_texts, val_ids, val_gold, val_long = _rows(model, val_file)
    val_texts = [val_texts[i] for i in val_long]
    val_ids, val_gold = [val_ids[i] for i in val_long], val_gold[val_long]
    val_z = _windows(model, val_texts, str(val_file), progress)
    section = reader.section(
        trained_on={"train_file": str(train_file), "bucket_rows": len(texts),
                    "rule_rows": stack_rows, "c": c, "seed": seed,
                    "seconds": round(time.perf_counter() - started, 1)},
        validation={"val_file": str(val_file), "rows": len(val_texts),
                    "before": accuracy_and_ece(val_z / card.temperature, val_gold),
                    "after": accuracy_and_ece(reader.log_odds(val_ids, val_z) / card.temperature,
                                      val_gold)})
    reader.save(model_dir)
    card.extra["long_texts"] = section
    card.save(model_dir)
    return section


def _rows(model, path) -> tuple[list[str], list[list[int]], np.ndarray, np.ndarray]:
    """The file's texts, their token ids (after the card's preprocessing), gold labels
    (1 = POSITIVE) and which of them are longer than one window."""
    from polarity.backends.windows import special_tokens
    from polarity.data.tables import iter_rows
    from polarity.preprocess import apply_all

    texts, gold = [], []
    for row in iter_rows(Path(path), required=("text", "label")):
        if row.fields is not None:
            texts.append(str(row.fields["text"]))
            gold.append(int(parse_label(row.fields["label"]) == POSITIVE))
    tokenizer = model.backend.tokenizer
    ids = tokenizer(apply_all(texts, model.card.preprocessing), add_special_tokens=False,
                    truncation=False, verbose=False)["input_ids"]
    width = model.card.max_length - sum(map(len, special_tokens(tokenizer)))
    long = np.asarray([i for i, t in enumerate(ids) if len(t) > width], dtype=np.int64)
    return texts, ids, np.asarray(gold), long


def _windows(model, texts: list[str], what: str, progress: bool) -> np.ndarray:
    """The windows' combined log-odds (before the temperature), with progress."""
    out = []
    for at in range(0, len(texts), 256):
        out.extend(model.backend.score(texts[at:at + 256], 32).log_odds)
        if progress:
            print(f"fit-long: {what}: {len(out)} of {len(texts)} scored", flush=True)
    return np.asarray(out)


def _bucket_matrix(ids, bits: int):
    from scipy import sparse

    rows, found = distinct_buckets(ids, bits)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, found)), shape=(len(ids), 1 << bits))


def _bucket_weights(ids, gold: np.ndarray, bits: int, c: float) -> tuple[np.ndarray, float]:
    """Per bucket: naive-Bayes log-count ratio times the logistic regression's weight on
    it; and that regression's intercept."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    x = _bucket_matrix(ids, bits)
    pos = 1 + np.asarray(x[gold == 1].sum(0)).ravel()
    neg = 1 + np.asarray(x[gold == 0].sum(0)).ravel()
    ratio = np.log(pos / pos.sum()) - np.log(neg / neg.sum())
    scaled = sparse.diags(1 / np.sqrt(np.asarray(x.sum(1)).ravel())) @ x @ sparse.diags(ratio)
    fit = LogisticRegression(C=c, max_iter=5000).fit(scaled, gold)
    return (fit.coef_[0] * ratio).astype(np.float16).astype(np.float32), float(fit.intercept_[0])


def _rule(weights: np.ndarray, ids, gold: np.ndarray, z: np.ndarray, lexical_bias: float
          ) -> tuple[float, float, float]:
    """(lexical, windows, bias) on rows the bucket weights did not see."""
    from sklearn.linear_model import LogisticRegression

    lexical = LongTextReader(weights, 1.0, 0.0, 0.0).lexical_scores(ids) + lexical_bias
    fit = LogisticRegression(C=1.0, max_iter=5000).fit(np.c_[lexical, z], gold)
    return float(fit.coef_[0][0]), float(fit.coef_[0][1]), float(fit.intercept_[0])


def accuracy_and_ece(log_odds: np.ndarray, gold: np.ndarray) -> dict:
    """Accuracy and expected calibration error of log-odds against gold (1 = POSITIVE)."""
    from polarity.evaluate.metrics import reliability

    p = 1 / (1 + np.exp(-log_odds))
    pred = (p >= 0.5).astype(int)
    confidence = np.where(pred == 1, p, 1 - p)
    return {"accuracy": round(float((pred == gold).mean()), 4),
            "ece": round(reliability(confidence, pred == gold)["ece"], 4)}
