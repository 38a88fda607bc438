"""Emoji and emoticons become words, exactly as the model card says."""

import pytest

from polarity.modelcard import ModelCard
from polarity.preprocess import apply_all, emoji_to_words


def test_emoji_and_emoticons_become_words():
    assert emoji_to_words("😍😍") == "smiling face with heart-eyes smiling face with heart-eyes"
    assert emoji_to_words("so bad 🤮") == "so bad face vomiting"
    assert emoji_to_words("great :)!") == "great Smile!"
    assert emoji_to_words("meh :(") == "meh Sad"


def test_text_that_only_looks_like_an_emoticon_is_left_alone():
    for text in ["see http://example.com/a:b at 10:30", "x = 3; y = (a:b)", "plain words"]:
        assert emoji_to_words(text) == text


def test_no_steps_leaves_texts_untouched():
    assert apply_all(["hi 😍 :)"], []) == ["hi 😍 :)"]
    assert apply_all(["hi 😍 :)"], ["emoji"]) == ["hi smiling face with heart-eyes Smile"]


def test_a_card_keeps_its_steps_and_refuses_unknown_ones():
    assert ModelCard().preprocessing == []  # models made before the step existed
    assert ModelCard(preprocessing=["emoji"]).preprocessing == ["emoji"]
    with pytest.raises(ValueError, match="unknown preprocessing step"):
        ModelCard(preprocessing=["stem"])
