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


def test_the_same_text_gets_the_same_answer_at_any_batch_size(tuned):
    from polarity.backends.ct2 import same_length_groups
    from polarity.prompt import scoring_ids_batch

    model = load_classifier(tuned, runtime="ctranslate2")
    backend = model.backend
    lengths = [len(r) for r in scoring_ids_batch(backend.tokenizer, backend.pieces, TEXTS, 96)]
    assert max(len(g) for g in same_length_groups(lengths, 20)) > 1  # real batched calls
    alone = [model.positive_probabilities([t])[0] for t in TEXTS]
    order = np.random.default_rng(0).permutation(len(TEXTS))
    for batch_size in (1, 7, 20):
        p = model.positive_probabilities([TEXTS[i] for i in order], batch_size)
        assert [p[j] for j in np.argsort(order)] == alone  # exactly


def test_the_conversion_is_cached_and_follows_the_adapter(tuned, tmp_path):
    import shutil

    from polarity.backends.ct2 import cached_ct2
    from polarity.modelcard import read_card

    first = cached_ct2(tuned, read_card(tuned))
    assert cached_ct2(tuned, read_card(tuned)) == first  # reused, not converted again
    other = tmp_path / "other"
    shutil.copytree(tuned, other)
    adapter = other / "adapter" / "adapter_model.safetensors"
    adapter.write_bytes(adapter.read_bytes()[:-4] + b"\0\0\0\0")
    assert cached_ct2(other, read_card(other)) != first


def test_models_pull_prepare_converts_up_front_and_says_what_it_costs(tuned, tmp_path,
                                                                       monkeypatch, capsys):
    import polarity.pull
    from polarity.cli import main

    monkeypatch.setenv("POLARITY_CACHE", str(tmp_path))
    monkeypatch.setattr(polarity.pull, "pull", lambda name, keep_gguf: tmp_path / name)
    assert main(["models", "pull", "tiny-base", "--prepare", str(tuned)]) == 0
    err = capsys.readouterr().err
    assert "converting once to CTranslate2 int8" in err and "GiB of memory" in err
    assert "peak memory of this process" in err and f"{tuned}: ready (causal_lm, int8)" in err
    assert len(list((tmp_path / "ct2").glob("*/model.bin"))) == 1
