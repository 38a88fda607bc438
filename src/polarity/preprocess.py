"""Text normalisation before a model's tokenizer, named by the steps a model card records.

A model is trained and served with the same steps: training writes them into the card's
``preprocessing`` list and every predictor applies exactly that list, so a model saved
before a step existed (an empty list) keeps reading texts as it was trained to.

``emoji``: emoji and ASCII emoticons become words. The MiniLM and MPNet vocabularies map
every emoji to [UNK], so "😍" and "🤮" looked the same to the model; their names ("smiling
face with heart-eyes", "face vomiting") are words the encoder already understands. Names
come from the ``emoji`` package (the Unicode CLDR short names) and emoticon meanings from
``emoticon-fix``'s dictionary, not from a table of ours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

STEPS = ("emoji",)
_EDGE_PUNCTUATION = ".,!?\"'"


def emoji_to_words(text: str) -> str:
    """"I love it 😍 :)" -> "I love it smiling face with heart-eyes Smile"."""
    import emoji

    # Looking for emoji is most of this step's cost (70 of 75 us a tweet, 2 ms a long
    # review): a text with no character an emoji can start with skips the search. Every
    # emoji has a non-ASCII code point, so an ASCII text never needs it.
    if not text.isascii() and not _emoji_starts().isdisjoint(text) and emoji.emoji_count(text):
        text = emoji.replace_emoji(text, replace=_emoji_name)
    table = _emoticons()
    words = text.split()
    for i, word in enumerate(words):
        # An emoticon is a whole word, possibly followed by sentence punctuation ("great :)!"),
        # never a piece of one (a URL's "://", a time "10:30").
        if word in table:
            words[i] = table[word]
            continue
        core = word.rstrip(_EDGE_PUNCTUATION)
        if core != word and core in table:
            words[i] = table[core] + word[len(core):]
    return " ".join(words)


def _emoji_name(chars: str, data: dict) -> str:
    # ":smiling_face_with_heart-eyes:" -> " smiling face with heart-eyes "
    return " " + data["en"].strip(":").replace("_", " ") + " "


@lru_cache(maxsize=1)
def _emoji_starts() -> frozenset[str]:
    import emoji

    return frozenset(e[0] for e in emoji.EMOJI_DATA)


@lru_cache(maxsize=1)
def _emoticons() -> dict[str, str]:
    from emoticon_fix.emoticon_fix import EMOTICON_DICT

    return dict(EMOTICON_DICT)


_FUNCTIONS: dict[str, Callable[[str], str]] = {"emoji": emoji_to_words}


def check_steps(steps: Sequence[str]) -> list[str]:
    """The steps, validated: a model card naming an unknown step cannot be served faithfully."""
    unknown = [s for s in steps if s not in _FUNCTIONS]
    if unknown:
        raise ValueError(f"unknown preprocessing step(s) {unknown}; this version knows "
                         f"{list(STEPS)} (a newer polarity may have made this model)")
    return list(steps)


def preprocessor(steps: Sequence[str]) -> Callable[[str], str] | None:
    """One function applying ``steps`` in order, or None when there are none."""
    functions = [_FUNCTIONS[s] for s in check_steps(steps)]
    if not functions:
        return None

    def apply(text: str) -> str:
        for function in functions:
            text = function(text)
        return text

    return apply


def apply_all(texts: Sequence[str], steps: Sequence[str]) -> list[str]:
    """``texts`` after ``steps`` (unchanged when there are none)."""
    function = preprocessor(steps)
    return list(texts) if function is None else [function(t) for t in texts]
