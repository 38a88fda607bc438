"""The cascade on tiny models: the trained tiny encoder answers what it is sure of, a tiny
Qwen2 (zero-shot) the rest."""

import json

import numpy as np
import pytest
from helpers import synthetic_rows, write_jsonl

from polarity import load_classifier
from polarity.modelcard import ModelCard

TEXTS = [r["text"] for r in synthetic_rows(24, seed=11)]


def write_cascade(folder, first, second, threshold):
    ModelCard(name="tiny-cascade", backend="cascade",
              extra={"stages": [str(first), str(second)], "threshold": threshold}).save(folder)
    return folder


@pytest.fixture(scope="module")
def stages(trained_tiny, tiny_qwen):
    return load_classifier(trained_tiny), load_classifier(tiny_qwen)


@pytest.fixture(scope="module")
def middle(stages):
    """A threshold that sends some texts on and keeps others: the median confidence."""
    p = np.asarray(stages[0].positive_probabilities(TEXTS))
    return float(np.median(np.maximum(p, 1 - p)))


def test_a_text_goes_on_exactly_when_the_fast_tier_is_unsure(tmp_path, trained_tiny,
                                                             tiny_qwen, stages, middle):
    fast, accurate = stages
    cascade = load_classifier(write_cascade(tmp_path, trained_tiny, tiny_qwen, middle))
    preds = cascade.predict(TEXTS, batch_size=5)
    p_fast = fast.positive_probabilities(TEXTS)
    p_accurate = accurate.positive_probabilities(TEXTS)
    sent = 0
    for pred, pf, pa in zip(preds, p_fast, p_accurate, strict=True):
        if max(pf, 1 - pf) < middle:
            sent += 1
            assert pred.tier == "accurate" and pred.escalation == "escalated"
            assert pred.scores["POSITIVE"] == pytest.approx(pa, abs=1e-6)  # its probability
        else:
            assert pred.tier == "fast" and pred.escalation == "not_needed"
            assert pred.scores["POSITIVE"] == pytest.approx(pf, abs=1e-9)
    assert 0 < sent < len(TEXTS)
    assert cascade.info.backend == "cascade"
    assert json.loads(json.dumps(preds[0].to_json()))["tier"] in ("fast", "accurate")


def test_thresholds_at_the_ends_send_nothing_or_everything(tmp_path, trained_tiny, tiny_qwen):
    none = load_classifier(write_cascade(tmp_path / "a", trained_tiny, tiny_qwen, 0.5))
    every = load_classifier(write_cascade(tmp_path / "b", trained_tiny, tiny_qwen, 1.0))
    assert {p.tier for p in none.predict(TEXTS)} == {"fast"}
    assert {p.tier for p in every.predict(TEXTS)} == {"accurate"}


def test_same_path_and_answer_in_any_batch(tmp_path, trained_tiny, tiny_qwen, middle):
    cascade = load_classifier(write_cascade(tmp_path, trained_tiny, tiny_qwen, middle))
    alone = [cascade.predict([t])[0] for t in TEXTS]
    rng = np.random.default_rng(0)
    for batch_size in (1, 4, 24):
        order = rng.permutation(len(TEXTS))
        preds = cascade.predict([TEXTS[i] for i in order], batch_size=batch_size)
        for i, pred in zip(order, preds, strict=True):
            assert (pred.tier, pred.label) == (alone[i].tier, alone[i].label)
            assert pred.scores["POSITIVE"] == pytest.approx(alone[i].scores["POSITIVE"],
                                                            abs=1e-5)


def test_a_long_text_is_routed_once_as_a_whole(tmp_path, trained_tiny, tiny_qwen):
    cascade = load_classifier(write_cascade(tmp_path, trained_tiny, tiny_qwen, 1.0))
    long = " ".join(TEXTS[:12])  # many windows of the tiny encoder's 32 tokens
    [pred] = cascade.predict([long])
    assert pred.tier == "accurate" and pred.windows == 1  # read whole by the causal LM


def test_reasons_come_from_the_stage_that_answered(tmp_path, stages, trained_tiny, tiny_qwen,
                                                   middle):
    cascade = load_classifier(write_cascade(tmp_path, trained_tiny, tiny_qwen, middle))
    preds = cascade.predict(TEXTS[:6], include_reasoning=True)
    assert {p.tier for p in preds} == {"fast", "accurate"}
    fast, accurate = stages
    for text, pred in zip(TEXTS[:6], preds, strict=True):
        stage = fast if pred.tier == "fast" else accurate
        [alone] = stage.predict([text], include_reasoning=True)
        assert pred.reasoning and pred.reasoning == alone.reasoning


def test_a_cascade_of_cascades_is_refused(tmp_path, trained_tiny, tiny_qwen):
    from polarity.errors import InputError

    inner = write_cascade(tmp_path / "inner", trained_tiny, tiny_qwen, 0.7)
    with pytest.raises(InputError, match="not cascades"):
        load_classifier(write_cascade(tmp_path / "outer", inner, tiny_qwen, 0.7))


def test_calibrate_picks_the_threshold_for_a_share(tmp_path, trained_tiny, tiny_qwen):
    from polarity.cli import main

    rows = synthetic_rows(40, seed=12)
    write_jsonl(tmp_path / "val.jsonl", rows)
    out = tmp_path / "cascade"
    assert main(["calibrate", "--cascade", str(trained_tiny), str(tiny_qwen), "--output",
                 str(out), "--val-file", str(tmp_path / "val.jsonl"), "--share", "0.25"]) == 0
    card = json.loads((out / "polarity.json").read_text())
    assert card["backend"] == "cascade" and (out / "cascade_curve.png").stat().st_size > 1000
    shares = [c["share_sent"] for c in card["extra"]["curve"]]
    assert shares == sorted(shares) and shares[0] == 0 and shares[-1] == 1
    assert card["metrics"]["validation"]["share_sent"] == pytest.approx(0.25, abs=0.03)
    # the threshold does what the card says on the same texts
    preds = load_classifier(out).predict([r["text"] for r in rows])
    assert np.mean([p.tier == "accurate" for p in preds]) == pytest.approx(
        card["metrics"]["validation"]["share_sent"])
