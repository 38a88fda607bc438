import pytest

from polarity.data.selection import (
    FULL_WEIGHT_CHARS,
    informativeness,
    labelling_order,
    length_sorted_chunks,
)

LONG = FULL_WEIGHT_CHARS


def test_informativeness_rises_with_doubt_disagreement_and_a_wrong_gold_label():
    sure = informativeness([0.98, 0.99], "POSITIVE", LONG)
    assert sure == pytest.approx(0.03)
    assert informativeness([0.5, 0.5], "POSITIVE", LONG) == 1.0  # unsure
    # Two teachers' spread never exceeds their mean's doubt; with three it can.
    assert informativeness([0.0, 1.0, 1.0], None, LONG) == pytest.approx(1.0)
    assert informativeness([0.0, 0.9, 0.9], None, LONG) == pytest.approx(0.9)
    assert informativeness([0.98, 0.99], "NEGATIVE", LONG) == 1.0  # both wrong
    assert informativeness([0.98, 0.99], None, LONG, has_emoji=True) == 1.0


def test_short_texts_weigh_less_in_proportion():
    assert informativeness([0.5, 0.5], None, LONG // 4) == pytest.approx(0.25)
    assert informativeness([0.5, 0.5], None, 10 * LONG) == 1.0


def test_a_random_sample_comes_first_then_the_rest_by_score():
    scores = [i / 100 for i in range(100)]
    order = labelling_order(scores, sample=10, seed=3)
    assert sorted(order) == list(range(100))  # every text exactly once
    assert order[:10] != sorted(order[:10], key=lambda i: -scores[i])  # not ranked
    rest = [scores[i] for i in order[10:]]
    assert rest == sorted(rest, reverse=True)
    assert labelling_order(scores, 10, seed=3) == order  # deterministic


def test_chunks_are_sorted_by_length_and_keep_their_order():
    order = [5, 0, 3, 1, 4, 2]
    lengths = [10, 30, 20, 50, 40, 60]
    assert length_sorted_chunks(order, lengths, chunk=3) == [0, 3, 5, 2, 1, 4]
