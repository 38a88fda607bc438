"""The Qwen2 tier's predictor on a tiny random Qwen2: label scoring, prefix cache, reasoning."""

import pytest
import torch

from polarity import load_classifier
from polarity.errors import InputError
from polarity.prompt import scoring_ids

TEXTS = ["the movie was great", "awful", "this product is so terrible and broken really",
         "love it", "the phone is really wonderful and the product is superb indeed 42"]


@pytest.fixture(scope="module")
def predictor(tiny_qwen):
    # The PyTorch runtime's own internals (prefix cache, padding, reasoning) are what this
    # file checks; the CTranslate2 and llama.cpp runtimes are compared with it in their own.
    return load_classifier(tiny_qwen, runtime="torch")


def test_a_plain_causal_lm_folder_loads_zero_shot(predictor, tiny_qwen):
    assert predictor.info.backend == "causal_lm"
    assert predictor.card.base_model == str(tiny_qwen)


def test_scored_label_is_the_argmax_of_the_two_label_logits(predictor):
    backend = predictor.backend
    model, tok, pieces = backend.model, backend.tokenizer, backend.pieces
    predictions = predictor.predict(TEXTS, batch_size=2)
    for text, pred in zip(TEXTS, predictions, strict=True):
        ids = torch.tensor([scoring_ids(tok, pieces, text, predictor.card.max_length)])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, -1]
        neg, pos = logits[list(pieces.label_ids)].tolist()
        assert pred.label == ("POSITIVE" if pos > neg else "NEGATIVE")
        expected = torch.softmax(torch.tensor([neg, pos]), 0)[1].item()
        assert pred.scores["POSITIVE"] == pytest.approx(expected, abs=1e-5)
        assert pred.confidence >= 0.5 and sum(pred.scores.values()) == pytest.approx(1.0)


def test_prefix_cache_and_padding_change_nothing(predictor):
    from polarity.backends.causal_lm import label_logits

    backend = predictor.backend
    args = (backend.model, backend.tokenizer, backend.pieces, TEXTS, 512)
    plain = label_logits(*args, batch_size=5, prefix=None)
    cached = label_logits(*args, batch_size=5, prefix=predictor.backend.prefix)
    one_by_one = label_logits(*args, batch_size=1, prefix=predictor.backend.prefix)
    assert torch.allclose(plain, cached, atol=1e-5)
    assert torch.allclose(plain, one_by_one, atol=1e-5)


def test_reasoning_is_bounded_and_the_label_does_not_move(predictor):
    plain = predictor.predict(TEXTS[:3])
    explained = predictor.predict(TEXTS[:3], include_reasoning=True)
    assert [p.label for p in explained] == [p.label for p in plain]
    assert all(p.reasoning is None for p in plain)
    labels = [p.label for p in plain]
    for bound in (1, 5):
        ids = predictor.backend.reasoning_ids(TEXTS[:3], labels, max_new_tokens=bound)
        assert all(len(row) <= bound for row in ids) and any(ids)
        assert predictor.backend.pieces.end_of_turn not in sum(ids, [])


def test_bad_input_is_refused(predictor):
    with pytest.raises(InputError):
        predictor.predict(["fine", ""])
    with pytest.raises(InputError):
        predictor.predict([3])
