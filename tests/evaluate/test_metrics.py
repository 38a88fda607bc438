import numpy as np
import pytest
from sklearn import metrics as skm

from polarity.evaluate.calibration import apply_temperature, fit_temperature
from polarity.evaluate.metrics import compute_metrics, nll, reliability, roc_auc

GOLD = ["POSITIVE", "NEGATIVE", "POSITIVE", "POSITIVE", "NEGATIVE", "NEGATIVE", "POSITIVE",
        "NEGATIVE", "POSITIVE", "NEGATIVE"]
PROB = [0.9, 0.3, 0.6, 0.4, 0.55, 0.1, 0.8, 0.8, 0.7, 0.45]


def test_agrees_with_scikit_learn():
    pred = ["POSITIVE" if p >= 0.5 else "NEGATIVE" for p in PROB]
    m = compute_metrics(GOLD, pred, PROB)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(GOLD, pred))
    p, r, f, s = skm.precision_recall_fscore_support(GOLD, pred, labels=["NEGATIVE", "POSITIVE"])
    for i, label in enumerate(["NEGATIVE", "POSITIVE"]):
        c = m["per_class"][label]
        assert (c["precision"], c["recall"], c["f1"], c["support"]) == pytest.approx(
            (p[i], r[i], f[i], s[i]))
    assert m["macro"]["f1"] == pytest.approx(skm.f1_score(GOLD, pred, average="macro"))
    assert m["confusion_matrix"]["matrix"] == skm.confusion_matrix(
        GOLD, pred, labels=["NEGATIVE", "POSITIVE"]).tolist()
    y = [g == "POSITIVE" for g in GOLD]
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, PROB))
    assert m["nll"] == pytest.approx(skm.log_loss(y, PROB))


def test_roc_auc_with_ties():
    gold = ["POSITIVE", "NEGATIVE", "POSITIVE", "NEGATIVE"]
    probs = [0.5, 0.5, 0.9, 0.1]
    assert roc_auc(gold, probs) == pytest.approx(skm.roc_auc_score([1, 0, 1, 0], probs))


def test_ece_hand_computed():
    # bins of width 1/15; 0.55 and 0.58 share bin 8, 0.95 sits in bin 14.
    conf = [0.55, 0.58, 0.95, 0.95]
    correct = [True, False, True, True]
    # bin 8: accuracy 0.5, confidence 0.565 -> |0.065| * 2/4; bin 14: |1 - 0.95| * 2/4
    expected = 0.065 * 0.5 + 0.05 * 0.5
    r = reliability(conf, correct)
    assert r["ece"] == pytest.approx(expected)
    assert [row["count"] for row in r["diagram"]] == [2, 2]


def test_groups_and_bands():
    pred = ["POSITIVE" if p >= 0.5 else "NEGATIVE" for p in PROB]
    cats = ["a"] * 5 + ["b"] * 5
    m = compute_metrics(GOLD, pred, PROB, {"category": cats, "source": [None] * 10})
    assert set(m["by_category"]) == {"a", "b"} and "by_source" not in m
    a = [g == p for g, p in zip(GOLD[:5], pred[:5], strict=True)]
    assert m["by_category"]["a"]["accuracy"] == pytest.approx(np.mean(a))
    bands = m["accuracy_by_confidence"]
    assert bands["high (>0.8)"]["count"] + bands["medium (0.5-0.8)"]["count"] == 10


def test_temperature_scaling_lowers_nll_on_overconfident_scores():
    rng = np.random.default_rng(0)
    n = 2000
    y = rng.random(n) < 0.5
    true_logit = np.where(y, 1.0, -1.0) + rng.normal(0, 1.5, n)
    logits = true_logit * 4  # an over-confident model: logits 4x too large
    gold = ["POSITIVE" if v else "NEGATIVE" for v in y]
    t = fit_temperature(logits, gold)
    assert 2.5 < t < 6
    before, after = nll(gold, apply_temperature(logits, 1.0)), nll(gold, apply_temperature(
        logits, t))
    assert after < before - 0.1
