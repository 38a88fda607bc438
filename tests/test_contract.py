"""The whitespace rule: the contract normalises every text once, so a text gets the same
answer whatever its leading, trailing or repeated whitespace, on every tier and runtime."""

import pytest

from polarity import load_classifier
from polarity.contract import check_texts, normalize_whitespace

# Each group is one text under the rule; the groups differ from each other.
GROUPS = [
    ["what a great film", " what a great film ", "what a great film\n\n",
     "\twhat  a great\u00a0film\r\n", "what\u3000a great film\u2029"],
    ["te xt that was dull", "te  xt that was dull", "te \n xt that was dull "],
]


def test_the_rule_strips_collapses_and_leaves_other_characters():
    assert normalize_whitespace("  a \t b\n\nc  ") == "a b c"
    assert normalize_whitespace("x\u00a0\u2003y") == "x y"  # Unicode spaces are spaces
    # Zero-width and other format characters are not whitespace: left as they are.
    assert normalize_whitespace("a\u200bb \u00e9\U0001f600 ") == "a\u200bb \u00e9\U0001f600"
    assert check_texts([" a ", "b\n"]) == ["a", "b"]


@pytest.fixture(scope="module")
def tiers(trained_tiny, tiny_qwen, tmp_path_factory):
    from polarity.export import export_onnx

    onnx_int8 = export_onnx(trained_tiny, tmp_path_factory.mktemp("ws") / "int8", "int8")
    models = {"encoder onnx int8": load_classifier(onnx_int8),
              "encoder torch": load_classifier(trained_tiny, runtime="torch"),
              "causal lm torch": load_classifier(tiny_qwen, runtime="torch"),
              "vader": load_classifier("vader")}
    try:
        import ctranslate2  # noqa: F401

        models["causal lm ctranslate2"] = load_classifier(tiny_qwen, runtime="ctranslate2")
    except ImportError:
        pass
    return models


@pytest.mark.parametrize("name", ["encoder onnx int8", "encoder torch", "causal lm torch",
                                  "causal lm ctranslate2", "vader"])
def test_every_tier_gives_identical_probabilities_whatever_the_whitespace(tiers, name):
    if name not in tiers:
        pytest.skip(f"{name}: runtime not installed")
    model = tiers[name]
    for group in GROUPS:
        # One text a call: batch neighbours move float32 sums in the last bits, which is
        # another property (tests/backends/test_same_answer.py), not this one.
        probs = [model.predict([text])[0].scores["POSITIVE"] for text in group]
        assert probs == [probs[0]] * len(group), (name, group, probs)
    # The rule is not vacuous: the tiny causal LM reads a trailing space as a token when
    # the text reaches its tokenizer unnormalised.
    if name == "causal lm torch":
        raw = model.backend.score(["what a great film", "what a great film "], 2).log_odds
        assert raw[0] != raw[1]
