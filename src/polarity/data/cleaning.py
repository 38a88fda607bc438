"""Text cleaning and the normalised key used to find near-duplicates."""

from __future__ import annotations

import html
import re
import unicodedata

from pydantic import BaseModel, ConfigDict

from polarity.contract import normalize_whitespace

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@\w{1,30}")
_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202f\ufeff]")
# Review sites break lines with HTML (IMDB's "<br /><br />").
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_KEY_DROP = re.compile(r"[^\w]+")
# Typographic quotes and dashes that tokenizers of cased and uncased models see as rare tokens.
_TRANSLATE = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                            "\u2013": "-", "\u2014": "-", "\u00b4": "'", "`": "'"})

CONTRACTIONS = {
    "won't": "will not", "can't": "cannot", "shan't": "shall not", "ain't": "is not",
    "n't": " not", "'re": " are", "'ll": " will", "'ve": " have", "'m": " am", "'d": " would",
}
_CONTRACTION = re.compile(
    "|".join(re.escape(k) for k in sorted(CONTRACTIONS, key=len, reverse=True)), re.IGNORECASE
)


class CleaningConfig(BaseModel):
    """How raw texts are cleaned before quality control."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    replace_urls: str | None = "URL"
    """Replacement for web addresses; None keeps them."""
    replace_mentions: str | None = "@user"
    """Replacement for @mentions; None keeps them."""
    lowercase: bool = False
    """Lower-case every text (off by default: cased models use the case)."""
    expand_contractions: bool = False
    """Rewrite "don't" as "do not" and so on (off by default)."""


def clean_text(text: str, config: CleaningConfig | None = None) -> str:
    """Normalise one text: HTML entities, unicode forms, control characters, URLs,
    mentions and whitespace; optionally lower-case and expand contractions."""
    config = config or CleaningConfig()
    text = html.unescape(html.unescape(text))  # scraped data is often escaped twice
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE)
    text = _CONTROL.sub(" ", _BREAK.sub(" ", text))
    if config.replace_urls is not None:
        text = _URL.sub(config.replace_urls, text)
    if config.replace_mentions is not None:
        text = _MENTION.sub(config.replace_mentions, text)
    if config.expand_contractions:
        text = _CONTRACTION.sub(lambda m: CONTRACTIONS[m.group(0).lower()], text)
    if config.lowercase:
        text = text.lower()
    return normalize_whitespace(text)


def normalized_key(text: str) -> str:
    """A key equal for texts that differ only in case, punctuation or spacing."""
    return _KEY_DROP.sub(" ", text.casefold()).strip()
