"""Long texts are read whole, in overlapping windows whose log-odds are combined."""

import numpy as np
import pytest
from helpers import FILLER

from polarity.backends.windows import sentences, token_windows, window_log_odds
from polarity.predictor import load_classifier


def test_windows_cover_every_token_and_end_at_the_end():
    ids = list(range(100))
    windows = token_windows(ids, 30)
    assert windows[0] == ids[:30] and windows[-1] == ids[-30:]
    assert set().union(*map(set, windows)) == set(ids)
    assert token_windows(ids[:30], 30) == [ids[:30]]


def test_a_confident_window_is_not_diluted_by_neutral_ones():
    class Tokenizer:
        pad_token_id = 0

        def __call__(self, texts, add_special_tokens=True, **_):
            one = isinstance(texts, str)
            ids = [[int(w) for w in t.split() if w.isdigit()] or [5]
                   for t in ([texts] if one else texts)]
            ids = [[101, *x, 102] if add_special_tokens else x for x in ids]
            return {"input_ids": ids[0] if one else ids}

    def run(ids, mask):  # log-odds = the sum of the window's ids that are 7 (+2) or 9 (-2)
        z = 2.0 * (ids == 7).sum(1) - 2.0 * (ids == 9).sum(1)
        return np.stack([np.zeros(len(z)), z], axis=1)

    text = " ".join(["1"] * 40 + ["9", "9"])
    z, windows, exits = window_log_odds(Tokenizer(), [text, "7"], 12, 4, run)
    assert exits == [None, None]
    assert windows == [8, 1]  # starts 0, 5, ..., 30 and 32 (the last ends at the end)
    assert z[0] == pytest.approx(-4.0) and z[1] == pytest.approx(2.0)


def test_a_long_text_is_the_confidence_weighted_mean_of_its_sentences(trained_tiny):
    model = load_classifier(trained_tiny, runtime="torch")  # max_length 32: 30-token windows
    parts = [" ".join(FILLER[(i + j) % len(FILLER)] for j in range(6)) + " ."
             for i in range(50)] + ["it was wonderful wonderful ."]
    text = " ".join(parts)
    [pred] = model.predict([text])
    assert pred.windows == len(parts) == len(sentences(text))

    def log_odds(p):
        return np.log(p / (1 - p))

    z = log_odds(np.array(model.positive_probabilities(parts)))
    expected = (z * np.abs(z)).sum() / np.abs(z).sum()
    assert log_odds(pred.scores["POSITIVE"]) == pytest.approx(expected, abs=1e-4)


def test_a_text_that_fits_one_window_is_read_at_once(trained_tiny):
    model = load_classifier(trained_tiny, runtime="torch")
    text = "the movie was great . it was sad ."
    assert model.predict([text])[0].windows == 1


def test_sentences_end_at_punctuation_before_space_and_at_line_breaks():
    assert sentences("One. Two! Three? 3.5 stays\nFour") == ["One.", "Two!", "Three?",
                                                              "3.5 stays", "Four"]


def test_work_run_between_the_batches_of_a_long_text_changes_no_answer(trained_tiny):
    from polarity.backends import interleave

    model = load_classifier(trained_tiny)  # ONNX, as served
    parts = [" ".join(FILLER[(i + j) % len(FILLER)] for j in range(6)) + " ."
             for i in range(30)] + ["it was awful awful ."]
    text, short = " ".join(parts), "it was great"
    alone = model.predict([text, short], batch_size=8)
    between: list = []
    interleave.install(lambda work: between.append(model.predict([short], batch_size=8)[0]))
    try:
        [pred] = model.predict([text], batch_size=8)
    finally:
        interleave.install(None)
    assert len(between) == 3  # 31 sentences in batches of 8: a point after each but the last
    assert pred == alone[0] and all(p == alone[1] for p in between)
