"""Emoji and emoticons become words, exactly as the model card says."""

import random

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


def test_ascii_texts_skip_the_emoji_search_and_read_the_same():
    import emoji

    # The shortcut's premise: no emoji is pure ASCII (keycaps carry U+20E3, flags are
    # regional indicators), so an ASCII text has nothing for the search to find.
    assert not [e for e in emoji.EMOJI_DATA if e.isascii()]
    rng = random.Random(0)
    pieces = ["good", "bad", ":)", ":(", "XD", "<3", ";-)", "10:30", "http://a.b", "!", "..."]
    for _ in range(200):
        text = " ".join(rng.choices(pieces, k=rng.randint(1, 12)))
        assert emoji_to_words(text) == emoji_to_words(emoji.replace_emoji(text, replace="?"))


def test_the_emoji_search_is_skipped_only_where_it_finds_nothing():
    import emoji

    from polarity.preprocess import _emoji_name

    rng = random.Random(1)
    others = ["café", "naïve", "—", "“quoted”", "½", "™", "©", "°", "→", "♥", "☺", "✔", "1", "#"]
    found = 0
    for sample in [*emoji.EMOJI_DATA][::5]:
        words = [*rng.choices(others + ["fine", ":)"], k=6), sample]
        text = " ".join(rng.sample(words, len(words)))
        searched = emoji.replace_emoji(text, replace=_emoji_name)  # always searched
        found += searched != text
        assert emoji_to_words(text) == emoji_to_words(searched)
    assert found > 900


def test_no_steps_leaves_texts_untouched():
    assert apply_all(["hi 😍 :)"], []) == ["hi 😍 :)"]
    assert apply_all(["hi 😍 :)"], ["emoji"]) == ["hi smiling face with heart-eyes Smile"]


def test_a_card_keeps_its_steps_and_refuses_unknown_ones():
    assert ModelCard().preprocessing == []  # models made before the step existed
    assert ModelCard(preprocessing=["emoji"]).preprocessing == ["emoji"]
    with pytest.raises(ValueError, match="unknown preprocessing step"):
        ModelCard(preprocessing=["stem"])
