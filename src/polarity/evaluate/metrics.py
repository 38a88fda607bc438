"""Classification metrics from scikit-learn, and the calibration metrics it lacks (expected
calibration error with its reliability diagram, bands of confidence)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from polarity.labels import LABELS, POSITIVE

BANDS = (("high (>0.8)", 0.8, 1.01), ("medium (0.5-0.8)", 0.5, 0.8))


def per_class(gold: Sequence[str], pred: Sequence[str]) -> dict:
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        gold, pred, labels=list(LABELS), zero_division=0)
    return {label: {"precision": float(precision[i]), "recall": float(recall[i]),
                    "f1": float(f1[i]), "support": int(support[i])}
            for i, label in enumerate(LABELS)}


def roc_auc(gold: Sequence[str], p_positive: Sequence[float]) -> float | None:
    """Area under the ROC curve; None when only one label occurs."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(gold) == POSITIVE
    if y.all() or not y.any():
        return None
    return float(roc_auc_score(y, np.asarray(p_positive, dtype=float)))


def reliability(confidence: Sequence[float], correct: Sequence[bool], bins: int = 15) -> dict:
    """Expected calibration error over equal-width confidence bins on [0, 1], and the
    per-bin data of a reliability diagram."""
    c = np.asarray(confidence, dtype=float)
    ok = np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(c, edges[1:-1], right=True), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        mask = idx == b
        n = int(mask.sum())
        if n:
            acc, conf = float(ok[mask].mean()), float(c[mask].mean())
            ece += n / len(c) * abs(acc - conf)
            rows.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": n,
                         "accuracy": acc, "confidence": conf})
    return {"ece": float(ece), "bins": bins, "diagram": rows}


def nll(gold: Sequence[str], p_positive: Sequence[float]) -> float:
    y = np.asarray(gold) == POSITIVE
    p = np.clip(np.asarray(p_positive, dtype=float), 1e-12, 1 - 1e-12)
    return float(-np.mean(np.where(y, np.log(p), np.log(1 - p))))


def compute_metrics(gold: Sequence[str], pred: Sequence[str], p_positive: Sequence[float],
                    groups: dict[str, Sequence[str | None]] | None = None) -> dict:
    """All metrics of ``metrics.json``; ``groups`` maps e.g. "source" to a value per row."""
    from sklearn.metrics import confusion_matrix

    g, p = np.asarray(gold), np.asarray(pred)
    correct = g == p
    conf = np.where(p == POSITIVE, np.asarray(p_positive), 1 - np.asarray(p_positive))
    classes = per_class(gold, pred)
    macro = {k: float(np.mean([classes[lab][k] for lab in LABELS]))
             for k in ("precision", "recall", "f1")}
    out = {
        "accuracy": float(correct.mean()),
        "n": len(g),
        "per_class": classes,
        "macro": macro,
        "confusion_matrix": {"labels": list(LABELS), "matrix": confusion_matrix(
            g, p, labels=list(LABELS)).tolist()},
        "roc_auc": roc_auc(gold, p_positive),
        "nll": nll(gold, p_positive),
        "confidence": {"mean": float(conf.mean()), "median": float(np.median(conf)),
                       "std": float(conf.std()), "min": float(conf.min()),
                       "max": float(conf.max())},
        "accuracy_by_confidence": {
            name: {"count": int(m.sum()), "accuracy": float(correct[m].mean()) if m.any()
                   else None}
            for name, lo, hi in BANDS for m in [(conf >= lo) & (conf < hi)]},
        "calibration": reliability(conf, correct),
    }
    for name, values in (groups or {}).items():
        buckets: dict[str, list[int]] = defaultdict(list)
        for i, v in enumerate(values):
            if v is not None:
                buckets[str(v)].append(i)
        if buckets:
            out[f"by_{name}"] = {k: {"n": len(ix), "accuracy": float(correct[ix].mean()),
                                     "macro_f1": float(np.mean([
                                         v["f1"] for v in per_class(g[ix], p[ix]).values()]))}
                                 for k, ix in sorted(buckets.items())}
    return out
