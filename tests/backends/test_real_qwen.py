"""Opt-in: the real Qwen2.5-Coder-1.5B-Instruct weights (`polarity models pull` first).

    .venv/bin/python -m pytest -m real_model tests/backends/test_real_qwen.py
"""

import pytest

pytestmark = pytest.mark.real_model
NAME = "qwen2.5-coder-1.5b-instruct"


@pytest.fixture(scope="module", autouse=True)
def user_cache():
    """The pulled weights live in the user's cache, not in the tests' own."""
    import os

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLARITY_CACHE", os.environ["POLARITY_USER_CACHE"])
        yield


@pytest.fixture(scope="module")
def qwen(user_cache):
    from polarity.predictor import load_classifier
    from polarity.pull import pulled_folder

    pulled_folder(NAME)  # a clear error when it is not pulled
    return load_classifier(NAME, runtime="torch")


@pytest.fixture(scope="module")
def accurate(user_cache):
    from polarity.predictor import load_classifier

    return load_classifier("accurate")  # the shipped adapter on its default CPU runtime


def test_the_accurate_tier_reads_plain_verdicts_and_answers_alike_in_any_batch(accurate):
    texts = ["I love it", "Worst purchase ever", "An absolute delight from start to finish.",
             "The battery died after two days and support never answered.",
             "not bad at all, I would buy it again", "it looks nice but it broke in a week"]
    alone = [accurate.predict([t])[0] for t in texts]
    assert [p.label for p in alone] == ["POSITIVE", "NEGATIVE", "POSITIVE", "NEGATIVE",
                                        "POSITIVE", "NEGATIVE"]
    together = accurate.predict(list(reversed(texts)), batch_size=4)[::-1]
    assert [p.scores for p in together] == [p.scores for p in alone]
    assert accurate.info.dtype == "int8" and {p.tier for p in alone} == {"accurate"}


def test_label_tokens_are_qwens_space_prefixed_labels(qwen):
    assert qwen.backend.pieces.label_ids == (84065, 26494)  # " NEG...", " POS..."
    tokens = qwen.backend.tokenizer.convert_ids_to_tokens(list(qwen.backend.pieces.label_ids))
    assert tokens == ["ĠNEG", "ĠPOS"]


def test_zero_shot_gets_unambiguous_sentences_right(qwen):
    texts = ["I love it", "Worst purchase ever", "An absolute delight from start to finish.",
             "The battery died after two days and support never answered."]
    labels = [p.label for p in qwen.predict(texts)]
    assert labels == ["POSITIVE", "NEGATIVE", "POSITIVE", "NEGATIVE"]


def test_reasoning_agrees_with_the_label(qwen):
    [pred] = qwen.predict(["Worst purchase ever"], include_reasoning=True)
    assert pred.label == "NEGATIVE" and pred.reasoning
