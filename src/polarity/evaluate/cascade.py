"""``polarity calibrate --cascade``: score validation with both stages, draw the
accuracy/escalation curve and pick the threshold of a cascade (:mod:`polarity.backends.cascade`).

The curve is exact for these texts: at threshold t, the texts whose first-stage confidence is
below t take the second stage's answer. The threshold is chosen for a target share of texts
sent on (default 15%) or as the lowest share that reaches a target accuracy. Cost per text is
measured here: the first stage's seconds per text plus the share times the second's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from polarity.errors import InputError
from polarity.evaluate.data import load_test_set
from polarity.folders import write_atomically
from polarity.labels import POSITIVE
from polarity.modelcard import ModelCard
from polarity.predictor import load_classifier

SHARES = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.40, 0.50, 1.0)


def timed_probabilities(model, texts: list[str], batch_size: int) -> tuple[np.ndarray, float]:
    from polarity.evaluate.run import predict_all

    started = time.perf_counter()
    probs, _ = predict_all(model, texts, batch_size, True, model.info.name)
    return np.asarray(probs), (time.perf_counter() - started) / len(texts)


def threshold_for_share(confidence: np.ndarray, share: float) -> float:
    """The threshold that sends on at most ``share`` of these texts (the least confident)."""
    if share <= 0:
        return 0.5
    if share >= 1:
        return 1.0
    ordered = np.sort(confidence)
    k = int(np.floor(share * len(ordered)))  # texts strictly below ordered[k] go on
    return float(ordered[k]) if k < len(ordered) else 1.0


def curve_point(p1: np.ndarray, p2: np.ndarray, gold: np.ndarray, threshold: float) -> dict:
    confidence = np.maximum(p1, 1 - p1)
    sent = confidence < threshold
    answer = np.where(sent, p2 >= 0.5, p1 >= 0.5)
    return {"threshold": round(threshold, 6), "share_sent": float(sent.mean()),
            "accuracy": float((answer == gold).mean())}


def choose(p1: np.ndarray, p2: np.ndarray, gold: np.ndarray, share: float | None,
           accuracy: float | None) -> tuple[float, str]:
    confidence = np.maximum(p1, 1 - p1)
    if accuracy is None:
        share = 0.15 if share is None else share
        return threshold_for_share(confidence, share), f"share {share:g} of validation sent on"
    for t in np.unique(np.concatenate([[0.5], confidence, [1.0]])):
        if curve_point(p1, p2, gold, float(t))["accuracy"] >= accuracy:
            return float(t), f"accuracy {accuracy:g} on validation"
    raise InputError(f"no threshold reaches accuracy {accuracy} on this validation data "
                     f"(the second stage alone: {curve_point(p1, p2, gold, 1.0)['accuracy']:.4f})")


def calibrate_cascade(first: str, second: str, val_file: str | Path, output_dir: str | Path,
                      share: float | None = None, accuracy: float | None = None,
                      batch_size: int = 16, name: str = "polarity-cascade",
                      text_column: str = "text", label_column: str = "label") -> dict:
    """Write a cascade folder (``polarity.json`` and ``cascade_curve.png``) into
    ``output_dir``; returns the curve and the choice."""
    first, second = (str(Path(s).resolve()) if Path(s).is_dir() else s for s in (first, second))
    data = load_test_set(val_file, text_column, label_column)
    gold = np.asarray([g == POSITIVE for g in data.labels])
    p1, s1 = timed_probabilities(load_classifier(first), data.texts, batch_size)
    p2, s2 = timed_probabilities(load_classifier(second), data.texts, batch_size)
    threshold, chosen_for = choose(p1, p2, gold, share, accuracy)
    conf = np.maximum(p1, 1 - p1)
    curve = [{**curve_point(p1, p2, gold, threshold_for_share(conf, s)),
              "seconds_per_text": s1 + s * s2} for s in SHARES]
    chosen = curve_point(p1, p2, gold, threshold)
    result = {"stages": [first, second], "threshold": threshold, "chosen_for": chosen_for,
              "validation": {**chosen, "rows": len(gold), "val_file": str(val_file),
                             "first_alone": curve_point(p1, p2, gold, 0.5)["accuracy"],
                             "second_alone": curve_point(p1, p2, gold, 1.0)["accuracy"],
                             "seconds_per_text": {"first": s1, "second": s2}},
              "curve": curve}
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ModelCard(name=name, backend="cascade", version="1.0.0",
              extra={"stages": [first, second], "threshold": threshold, "curve": curve,
                     "chosen_for": chosen_for},
              metrics={"validation": result["validation"]}).save(out)
    write_atomically(out / "cascade_curve.json", json.dumps(result, indent=2) + "\n")
    (out / "cascade_curve.png").write_bytes(_chart(result))
    return result


def _chart(result: dict) -> bytes:
    from polarity.evaluate.charts import _figure, _png

    plt, (fig, ax) = _figure()
    curve = result["curve"]
    ax.plot([c["share_sent"] for c in curve], [c["accuracy"] for c in curve], "o-",
            label="cascade")
    v = result["validation"]
    ax.axhline(v["first_alone"], ls="--", color="grey", label="first stage alone")
    ax.axhline(v["second_alone"], ls=":", color="black", label="second stage alone")
    ax.axvline(v["share_sent"], color="#c0392b", lw=0.8, label="chosen threshold")
    ax.set_xlabel("share of texts sent to the second stage")
    ax.set_ylabel("accuracy (validation)")
    ax.legend(loc="lower right")
    ax.set_title("Cascade: accuracy against escalation")
    return _png(plt, fig)
