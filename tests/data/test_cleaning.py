from polarity.data.cleaning import CleaningConfig, clean_text, normalized_key


def test_urls_mentions_entities_and_spaces():
    raw = "@john  check https://x.co/abc &amp;amp; www.site.com \u200b now&#33;"
    assert clean_text(raw) == "@user check URL & URL now!"


def test_unicode_normalisation_and_quotes():
    assert clean_text("\u201cFantastic\u201d \uff46\uff55\uff4c\uff4c\u2014width") == \
        '"Fantastic" full-width'


def test_optional_lowercase_and_contractions():
    cfg = CleaningConfig(lowercase=True, expand_contractions=True)
    assert clean_text("I Don't like it, it's not GREAT and I can't wait", cfg) == \
        "i do not like it, it's not great and i cannot wait"
    assert clean_text("Don't") == "Don't"


def test_keeps_urls_when_disabled():
    cfg = CleaningConfig(replace_urls=None, replace_mentions=None)
    assert clean_text("@me see http://a.b", cfg) == "@me see http://a.b"


def test_normalized_key_ignores_case_punctuation_spacing():
    assert normalized_key("Great movie!!") == normalized_key("great   movie")
    assert normalized_key("great movie") != normalized_key("bad movie")
