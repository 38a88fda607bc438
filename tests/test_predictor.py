import math

import pytest

from polarity import load_classifier
from polarity.contract import check_texts, from_positive_probability
from polarity.errors import InputError, ModelNotFoundError
from polarity.predictor import Predictor


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.73, 1.0])
def test_prediction_invariants(p):
    pred = from_positive_probability(p)
    assert pred.label in ("POSITIVE", "NEGATIVE")
    assert 0.5 <= pred.confidence <= 1.0
    assert pred.scores["POSITIVE"] + pred.scores["NEGATIVE"] == pytest.approx(1.0)
    assert pred.label == ("POSITIVE" if p >= 0.5 else "NEGATIVE")


@pytest.mark.parametrize("bad, message", [
    ([], "empty"), (["ok", ""], "#1 is empty"), (["   "], "whitespace"), ([3], "not a string"),
    (None, "list of strings"), (["fine", None], "NoneType"),
])
def test_bad_input_is_a_clear_error(bad, message):
    with pytest.raises(InputError, match=message):
        check_texts(bad)


def test_a_lone_surrogate_is_a_clear_error_and_a_pair_is_fine():
    with pytest.raises(InputError, match=r"text #1 is not valid Unicode.*character 3"):
        check_texts(["fine", "ok \ud83d cut"])
    assert check_texts(["ok \U0001F600 whole"]) == ["ok \U0001F600 whole"]


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_batch_size_must_be_a_positive_integer(size):
    with pytest.raises(InputError, match="batch_size must be a positive integer"):
        check_texts(["fine"], size)


def test_single_string_is_a_batch_of_one():
    assert check_texts("hello") == ["hello"]


def test_trained_model_rejects_bad_input(trained_tiny):
    clf = load_classifier(trained_tiny, runtime="torch")
    assert isinstance(clf, Predictor)
    with pytest.raises(InputError):
        clf.predict([])
    with pytest.raises(InputError):
        clf.predict(["fine", 42])
    with pytest.raises(InputError, match="lone surrogate"):
        clf.predict(["fine", "half an emoji \ud83d"])
    with pytest.raises(InputError, match="batch_size"):
        clf.predict(["fine"], batch_size=0)


def test_reasoning_only_when_asked_and_names_words(trained_tiny):
    clf = load_classifier(trained_tiny, runtime="torch")
    plain, explained = clf.predict(["really wonderful movie"]), clf.predict(
        ["really wonderful movie"], include_reasoning=True)
    assert plain[0].reasoning is None
    assert explained[0].label == plain[0].label
    assert explained[0].reasoning.startswith(plain[0].label)
    assert "'wonderful'" in explained[0].reasoning  # the one sentiment word is named


def test_occlusion_ranks_words_by_log_odds_even_when_confident():
    from polarity.backends.occlusion import explain_by_occlusion

    def score(texts, batch_size):  # a confident model: "good" adds 3 log-odds, "fine" 0.5
        logit = [4.0 + 3.0 * t.split().count("good") + 0.5 * t.split().count("fine")
                 for t in texts]
        return [1 / (1 + math.exp(-x)) for x in logit], [1] * len(texts), [None] * len(texts)

    text = "a good and fine day"
    reason = explain_by_occlusion(text, score([text], 1)[0][0], score)
    assert reason == ("POSITIVE: words that pushed towards it most (drop in log-odds without "
                      "each): 'good' (3.00), 'fine' (0.50).")


def test_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not found"):
        load_classifier("no-such-model")
    with pytest.raises(ModelNotFoundError, match="polarity.json is missing"):
        load_classifier(tmp_path)


def test_vader_baseline_behind_the_same_contract():
    pytest.importorskip("vaderSentiment")
    clf = load_classifier("vader")
    preds = clf.predict(["I love this, it is wonderful!", "This is horrible and I hate it."],
                        include_reasoning=True)
    assert [p.label for p in preds] == ["POSITIVE", "NEGATIVE"]
    assert "compound" in preds[0].reasoning


@pytest.mark.parametrize("device, message", [
    ("gpu", "not a device name"), ("cuda:7", "not available here"),
])
def test_a_device_this_machine_lacks_is_refused_before_loading(device, message, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(InputError, match=message):
        load_classifier("default", device=device)


def test_a_corrupt_model_card_is_one_line(tmp_path):
    (tmp_path / "polarity.json").write_text('{"name": ')
    with pytest.raises(ModelNotFoundError, match="not valid model metadata: Invalid JSON") as exc:
        load_classifier(tmp_path)
    assert "\n" not in str(exc.value)


def test_blank_means_whitespace_control_and_format_characters():
    import unicodedata

    from polarity.contract import is_blank

    for cp in range(0x10000):
        ch = chr(cp)
        if 0xD800 <= cp <= 0xDFFF:
            continue  # surrogates are refused before this check
        expected = ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf")
        assert is_blank(ch) == expected, f"U+{cp:04X}"
    assert is_blank("\u200b \ufeff\x00") and not is_blank("\u200bok")
