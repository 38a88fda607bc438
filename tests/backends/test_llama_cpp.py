"""The accurate tier on llama.cpp, on a tiny Qwen2: the adapter merged and quantised into one
GGUF file, scores close to PyTorch's, and the same answer at any batch size."""

import numpy as np
import pytest
from helpers import synthetic_rows, tune_tiny_qwen, write_tiny_gguf

from polarity import load_classifier

pytest.importorskip("llama_cpp", reason="the llama_cpp runtime needs llama-cpp-python "
                    "(pip install 'polarity[llama-cpp]', which compiles llama.cpp; "
                    "`make setup` leaves it out)")

TEXTS = [r["text"] for r in synthetic_rows(20, seed=21)]


@pytest.fixture(scope="module")
def tuned(tiny_qwen, tmp_path_factory):
    """A few LoRA steps over the tiny Qwen2 as a GGUF base (what `models pull` leaves)."""
    root = tmp_path_factory.mktemp("llama")
    gguf = write_tiny_gguf(tiny_qwen, root / "tiny.gguf")
    return gguf, tune_tiny_qwen(gguf, root, "tiny-llama")


def test_the_merged_q8_model_scores_like_pytorch(tuned):
    _, folder = tuned
    fast = load_classifier(folder, runtime="llama_cpp")
    assert fast.info.dtype == "q8_0"
    torch_p = np.asarray(load_classifier(folder, runtime="torch").positive_probabilities(TEXTS))
    llama_p = np.asarray(fast.positive_probabilities(TEXTS))
    # Q8_0 weights and an f16 KV cache on a tiny random model whose logits are large: the
    # real 1.5B model's agreement is measured in benchmarks/accurate_runtimes.py
    assert np.abs(torch_p - llama_p).mean() < 0.02 and np.abs(torch_p - llama_p).max() < 0.1
    assert ((torch_p >= 0.5) == (llama_p >= 0.5)).mean() >= 0.85


def test_the_same_text_gets_the_same_answer_at_any_batch_size(tuned):
    _, folder = tuned
    model = load_classifier(folder, runtime="llama_cpp")
    alone = [model.positive_probabilities([t])[0] for t in TEXTS]
    order = np.random.default_rng(0).permutation(len(TEXTS))
    for batch_size in (1, 7, 20):
        p = model.positive_probabilities([TEXTS[i] for i in order], batch_size)
        assert [p[j] for j in np.argsort(order)] == alone  # exactly


def test_a_gguf_base_runs_zero_shot_and_auto_picks_llama_cpp(tuned):
    gguf, folder = tuned
    zero = load_classifier(gguf, runtime="llama_cpp")
    assert len(zero.predict(TEXTS[:3])) == 3
    # auto: the ONNX graph and CTranslate2 convert only folders, so a GGUF base runs on
    # llama.cpp
    assert load_classifier(folder).info.dtype == "q8_0"


def test_a_folder_base_never_runs_on_llama_cpp_without_a_gguf(tiny_qwen):
    import importlib.util

    from polarity.errors import ModelNotFoundError

    # an HF folder without a GGUF beside it: the int8 ONNX graph where ONNX Runtime is
    # installed, else CTranslate2 int8, else torch
    runtime = ("onnx_lm" if importlib.util.find_spec("onnxruntime") else "ctranslate2"
               if importlib.util.find_spec("ctranslate2") else "torch")
    info = load_classifier(tiny_qwen).info
    assert (info.runtime, info.dtype) == (runtime, "float32" if runtime == "torch" else "int8")
    with pytest.raises(ModelNotFoundError, match="GGUF"):
        load_classifier(tiny_qwen, runtime="llama_cpp")
