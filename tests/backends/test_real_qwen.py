"""Opt-in: the real Qwen2.5-Coder-1.5B-Instruct weights (`polarity models pull` first).

    .venv/bin/python -m pytest -m real_model tests/backends/test_real_qwen.py
"""

import pytest

pytestmark = pytest.mark.real_model
NAME = "qwen2.5-coder-1.5b-instruct"


@pytest.fixture(scope="module")
def qwen():
    from polarity.predictor import load_classifier
    from polarity.pull import pulled_folder

    pulled_folder(NAME)  # a clear error when it is not pulled
    return load_classifier(NAME)


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
