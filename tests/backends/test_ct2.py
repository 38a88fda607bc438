"""The accurate tier's default CPU runtime, CTranslate2 int8, on a tiny Qwen2: the adapter merged
and converted once (cached), scores close to PyTorch's, and the same answer at any batch
size."""

import numpy as np
import pytest
from helpers import synthetic_rows, tune_tiny_qwen

from polarity import load_classifier
from polarity.evaluate.setup import cpu

pytest.importorskip("ctranslate2", reason="the ctranslate2 runtime needs ctranslate2 "
                    "(in the qwen extra; `make setup` installs it)")

TEXTS = [r["text"] for r in synthetic_rows(20, seed=21)]


@pytest.fixture(scope="module")
def tuned(tiny_qwen, tmp_path_factory):
    return tune_tiny_qwen(tiny_qwen, tmp_path_factory.mktemp("ct2"), "tiny-ct2")


def test_the_conversion_scores_like_pytorch(tuned, monkeypatch):
    """The merged, converted model computes what PyTorch computes (float32 products: the
    conversion alone, whatever the CPU's int8 library)."""
    import polarity.backends.ct2 as ct2

    monkeypatch.setattr(ct2, "COMPUTE_TYPE", "float32")
    exact = load_classifier(tuned, runtime="ctranslate2")
    assert exact.info.dtype == "float32"
    torch_p = np.asarray(load_classifier(tuned, runtime="torch").positive_probabilities(TEXTS))
    assert np.abs(torch_p - np.asarray(exact.positive_probabilities(TEXTS))).max() < 2e-3


def test_int8_is_the_default_and_close_to_pytorch_where_int8_is_exact(tuned):
    fast = load_classifier(tuned)  # auto: CTranslate2 on the CPU
    assert fast.info.dtype == "int8" and fast.info.backend == "causal_lm"
    if "avx512_vnni" not in cpu()["extensions"]:
        pytest.skip("int8 closeness is checked where the CPU has VNNI (exact int8 products); "
                    "with AVX2 alone CTranslate2's int8 is coarser (polarity.backends.ct2."
                    "COMPUTE_TYPE)")
    torch_p = np.asarray(load_classifier(tuned, runtime="torch").positive_probabilities(TEXTS))
    ct2_p = np.asarray(fast.positive_probabilities(TEXTS))
    assert np.abs(torch_p - ct2_p).mean() < 0.03 and np.abs(torch_p - ct2_p).max() < 0.15
    assert ((torch_p >= 0.5) == (ct2_p >= 0.5)).mean() >= 0.85


@pytest.mark.parametrize("span", [0, 4, 1000])
def test_the_same_text_gets_the_same_answer_at_any_batch_size(tuned, span, monkeypatch):
    # with span > 0 texts of different lengths share a call, each read off its own last
    # position: exactly as alone at the shipped span (one length a call), within rounding
    # otherwise (the real tier's int8 moves more: docs/qwen.md)
    import polarity.backends.ct2 as ct2
    from polarity.prompt import scoring_ids_batch

    shipped = ct2.MAX_SPAN
    monkeypatch.setattr(ct2, "MAX_SPAN", span)
    model = load_classifier(tuned, runtime="ctranslate2")
    backend = model.backend
    texts = [t + " and more" * (i % 5) for i, t in enumerate(TEXTS)]
    lengths = [len(r) for r in scoring_ids_batch(backend.tokenizer, backend.pieces, texts, 96)]
    groups = ct2.near_length_groups(lengths, 20)
    assert max(len(g) for g in groups) > 1  # real batched calls
    spans = [lengths[g[-1]] - lengths[g[0]] for g in groups]
    assert max(spans) <= span and (max(spans) > 0) == (span > 0)  # mixed lengths in a call
    alone = [model.positive_probabilities([t])[0] for t in texts]
    order = np.random.default_rng(0).permutation(len(texts))
    for batch_size in (1, 7, 20):
        p = model.positive_probabilities([texts[i] for i in order], batch_size)
        p = [p[j] for j in np.argsort(order)]
        if span <= shipped:
            assert p == alone  # exactly
        else:  # a text's last tokens read one step at a time: rounding apart, the same
            assert np.abs(np.asarray(p) - alone).max() < 1e-6


def test_near_length_groups_bound_size_and_span():
    lengths = [10, 30, 11, 12, 15, 31, 10, 14]
    groups = ct2_groups(lengths, 3, 4)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert all(len(g) <= 3 and lengths[g[-1]] - lengths[g[0]] <= 4 for g in groups)
    assert groups == [[0, 6, 2], [3, 7, 4], [1, 5]]


def ct2_groups(lengths, batch_size, span):
    from polarity.backends.ct2 import near_length_groups

    return near_length_groups(lengths, batch_size, span)
