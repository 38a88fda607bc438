"""The accurate tier on ONNX Runtime with int8 products, on a tiny Qwen2: the graph built from
the merged weights computes what PyTorch computes, and a text gets exactly the same answer at
any batch size and in any company."""

import numpy as np
import pytest
from helpers import synthetic_rows, tune_tiny_qwen

from polarity import load_classifier

TEXTS = [r["text"] for r in synthetic_rows(20, seed=21)]


@pytest.fixture(scope="module")
def tuned(tiny_qwen, tmp_path_factory):
    return tune_tiny_qwen(tiny_qwen, tmp_path_factory.mktemp("onnx-lm"), "tiny-onnx-lm")


@pytest.fixture(scope="module")
def torch_p(tuned):
    return np.asarray(load_classifier(tuned, runtime="torch").positive_probabilities(TEXTS))


def test_the_graph_computes_what_pytorch_computes(tuned, torch_p, monkeypatch):
    """Float32 products: the graph itself (attention, rotary positions, the cached head); the
    merged weights are float16, as for CTranslate2 (test_ct2.py), hence not closer."""
    import polarity.backends.onnx_lm as onnx_lm

    monkeypatch.setattr(onnx_lm, "COMPUTE_TYPE", "float32")
    exact = load_classifier(tuned, runtime="onnx_lm")
    assert exact.info.dtype == "float32"
    assert np.abs(torch_p - np.asarray(exact.positive_probabilities(TEXTS))).max() < 2e-3


def test_int8_is_close_to_pytorch(tuned, torch_p):
    model = load_classifier(tuned, runtime="onnx_lm")
    assert model.info.runtime == "onnx_lm" and model.info.dtype == "int8"
    onnx_p = np.asarray(model.positive_probabilities(TEXTS))
    # the tiny model (32 wide, weights at 0.3) is far more sensitive to int8 than the real one
    assert np.abs(torch_p - onnx_p).mean() < 0.03 and np.abs(torch_p - onnx_p).max() < 0.15
    assert ((torch_p >= 0.5) == (onnx_p >= 0.5)).mean() >= 0.9


def test_the_same_text_gets_the_same_answer_at_any_batch_size(tuned):
    model = load_classifier(tuned, runtime="onnx_lm")
    texts = [t + " and more" * (i % 3) for i, t in enumerate(TEXTS)]
    alone = [model.positive_probabilities([t])[0] for t in texts]
    order = np.random.default_rng(0).permutation(len(texts))
    for batch_size in (1, 7, 20):
        p = model.positive_probabilities([texts[i] for i in order], batch_size)
        assert [p[j] for j in np.argsort(order)] == alone  # exactly


def test_activation_maxima_leave_padding_out(tiny_qwen, tmp_path):
    """Measured in calls of 8 texts of different lengths, the maxima are those of the texts
    run one at a time, although the padding token's embedding is a spike on one channel that
    would top that channel's maximum."""
    import shutil

    import torch

    from polarity.backends.causal_lm import load_base_lm, load_lm_tokenizer
    from polarity.backends.onnx_lm import MAX_PAD
    from polarity.backends.onnx_lm_smooth import activation_maxima

    folder = shutil.copytree(tiny_qwen, tmp_path / "spiked")
    tokenizer = load_lm_tokenizer(folder)
    model = load_base_lm(folder, "float32")
    with torch.no_grad():
        pad = model.get_input_embeddings().weight[tokenizer.pad_token_id]
        pad.zero_()
        pad[0] = 1.0
    model.save_pretrained(folder)
    texts = [t + " and more" * (i % 4) for i, t in enumerate(TEXTS)]
    alone = activation_maxima(folder, tokenizer, texts, 96, max_pad=MAX_PAD, batch_size=1)
    batched = activation_maxima(folder, tokenizer, texts, 96, max_pad=MAX_PAD, batch_size=8)
    layers = {name.split(".")[2] for name in alone}
    assert alone.keys() == batched.keys() and len(alone) == 3 * len(layers) >= 6
    for name, peak in alone.items():
        assert peak.min() > 0 and np.allclose(batched[name], peak, rtol=0.02), name


def test_activation_maxima_in_float32_layers_match_bfloat16(tiny_qwen, monkeypatch):
    """Without bfloat16 products (AVX2), each layer computes in float32 while the weights are
    held in bfloat16: the maxima are those of the bfloat16 model, to bfloat16's precision."""
    import polarity.cpu
    from polarity.backends.causal_lm import load_lm_tokenizer
    from polarity.backends.onnx_lm import MAX_PAD
    from polarity.backends.onnx_lm_smooth import activation_maxima

    tokenizer = load_lm_tokenizer(tiny_qwen)
    found = {}
    for native in (True, False):
        monkeypatch.setattr(polarity.cpu, "bfloat16_products", lambda native=native: native)
        found[native] = activation_maxima(tiny_qwen, tokenizer, TEXTS, 96, max_pad=MAX_PAD)
    assert found[True].keys() == found[False].keys() and found[True]
    for name, peak in found[True].items():
        error = np.abs(found[False][name] - peak) / peak
        # bfloat16 keeps 8 bits: its own rounding, compounded over layers, is the difference
        assert np.median(error) < 0.01 and error.max() < 0.06, name
