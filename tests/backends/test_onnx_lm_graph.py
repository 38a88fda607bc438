"""The ONNX graph of a causal LM against Hugging Face's own model: a Llama-style config (no
q/k/v bias, a head size other than hidden / heads, one key head for four query heads), float32
products, a cached head and texts of different lengths padded at the end."""

import json

import numpy as np
import pytest

from polarity.backends.onnx_lm import causal_mask, rope_tables
from polarity.backends.onnx_lm_graph import (
    EMBEDDINGS_FILE,
    GRAPH_FILE,
    SHAPES_FILE,
    build_graph,
)

LABELS = [3, 7]


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                         max_position_embeddings=64, rope_theta=10000.0, attention_bias=False,
                         tie_word_embeddings=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    folder = tmp_path_factory.mktemp("llama")
    model.to(torch.float16).save_pretrained(folder)  # what merge_adapter writes
    return model.float(), folder


def graph_logits(folder, head: list[int], rows: list[list[int]]) -> np.ndarray:
    import onnxruntime as ort

    shapes = json.loads((folder / SHAPES_FILE).read_text())
    session = ort.InferenceSession(str(folder / GRAPH_FILE), providers=["CPUExecutionProvider"])
    table = np.load(folder / EMBEDDINGS_FILE).astype(np.float32)
    group = shapes["heads"] // shapes["kv_heads"]

    def run(token_rows, cache, past):
        new = max(len(r) for r in token_rows)
        embeds = np.zeros((len(token_rows), new, table.shape[1]), np.float32)
        for i, r in enumerate(token_rows):
            embeds[i, :len(r)] = table[r]
        positions = np.arange(past, past + new)
        cos, sin = rope_tables(shapes["rope_theta"], shapes["head_dim"], positions)
        feed = {"inputs_embeds": embeds, "cos": cos, "sin": sin,
                "mask": causal_mask(past, new, group),
                "last": np.asarray([i * new + len(r) - 1 for i, r in enumerate(token_rows)]),
                **cache}
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, feed), strict=True))

    empty = np.zeros((1, shapes["kv_heads"], 0, shapes["head_dim"]), np.float32)
    first = run([head], {f"past_{k}.{i}": empty for i in range(shapes["layers"])
                         for k in ("key", "value")}, 0)
    cache = {n.replace("present", "past"): v for n, v in first.items() if n != "logits"}
    return run(rows, cache, len(head))["logits"]


def test_the_graph_computes_what_the_model_computes(llama, tmp_path):
    import torch

    model, folder = llama
    out = build_graph(folder, tmp_path / "graph", LABELS, int8=False)
    head, rows = [1, 2, 3, 4, 5], [[6, 7, 8], [9, 10, 11, 12, 13, 14], [15]]
    got = graph_logits(out, head, rows)
    with torch.no_grad():
        want = np.stack([model(torch.tensor([head + r])).logits[0, -1, LABELS].numpy()
                         for r in rows])
    assert np.abs(got - want).max() < 5e-3  # the float16 copy of the weights


HEAD = [1, 2, 3, 4, 5]
ROWS = [np.random.default_rng(i).integers(0, 50, 1 + i % 8).tolist() for i in range(16)]


@pytest.fixture(scope="module")
def outliers(tmp_path_factory):
    """The Llama above with a few input channels of every product 30x larger than the rest
    (the RMS norms' weights; the up product's rows), as in real LLMs, and the maxima of each
    product's input over the test's tokens."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                         max_position_embeddings=64, tie_word_embeddings=False)
    torch.manual_seed(1)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.input_layernorm.weight[[3, 17]] = 30.0
            layer.post_attention_layernorm.weight[[5, 20]] = 30.0
            layer.mlp.up_proj.weight[[7, 40]] *= 30.0
    folder = tmp_path_factory.mktemp("outliers")
    model.to(torch.float16).save_pretrained(folder)
    model = model.float()
    maxima, hooks = {}, []
    for name, module in model.named_modules():
        if name.endswith(("q_proj", "gate_proj", "down_proj")):
            hooks.append(module.register_forward_pre_hook(
                lambda m, args, name=name: maxima.__setitem__(
                    name, np.maximum(maxima.get(name, 0), args[0].abs().amax((0, 1)).numpy()))))
    with torch.no_grad():
        for row in ROWS:
            model(torch.tensor([HEAD + row]))
    for hook in hooks:
        hook.remove()
    return model, folder, maxima


def test_smoothing_leaves_the_float_model_unchanged(outliers, tmp_path):
    model, folder, maxima = outliers
    plain = graph_logits(build_graph(folder, tmp_path / "plain", LABELS, int8=False), HEAD, ROWS)
    smooth = graph_logits(build_graph(folder, tmp_path / "smooth", LABELS, int8=False,
                                      maxima=maxima), HEAD, ROWS)
    assert len(maxima) == 6 and np.abs(plain - smooth).max() < 1e-3


def test_smoothing_brings_int8_closer_to_float(outliers, tmp_path):
    import torch

    from polarity.int8_rows import weight_range

    model, folder, maxima = outliers
    with torch.no_grad():
        want = np.stack([model(torch.tensor([HEAD + r])).logits[0, -1, LABELS].numpy()
                         for r in ROWS])
    # the weights' range the runtime picks here: 63 where int8 sums would saturate (AVX2
    # without VNNI), which the test must not mistake for rounding
    largest = weight_range()
    plain = graph_logits(build_graph(folder, tmp_path / "plain", LABELS, largest=largest),
                         HEAD, ROWS)
    smooth = graph_logits(build_graph(folder, tmp_path / "smooth", LABELS, largest=largest,
                                      maxima=maxima), HEAD, ROWS)
    plain_error, smooth_error = np.abs(plain - want).mean(), np.abs(smooth - want).mean()
    # seeds 0-5 of this model: 0.39-0.67 of the error left; nothing smoothed would leave 1.0
    assert smooth_error < 0.75 * plain_error, (plain_error, smooth_error)


def test_joined_products_compute_what_separate_ones_compute(outliers, tmp_path):
    """q, k, v (and gate, up) as one int8 product split after: every output column is the
    same sum as alone, so the logits are the same to the last bit."""
    _, folder, maxima = outliers
    joined = build_graph(folder, tmp_path / "joined", LABELS, maxima=maxima)
    separate = build_graph(folder, tmp_path / "separate", LABELS, maxima=maxima, join=False)
    assert np.array_equal(graph_logits(joined, HEAD, ROWS), graph_logits(separate, HEAD, ROWS))


def test_other_architectures_are_left_to_the_next_runtime():
    from polarity.backends.onnx_lm_graph import unsupported

    assert unsupported({"model_type": "qwen2", "rope_theta": 1e6}) is None
    assert unsupported({"model_type": "llama"}) is None
    assert "not 'phi3'" in unsupported({"model_type": "phi3"})
    assert "yarn" in unsupported({"model_type": "qwen2", "rope_scaling": {"type": "yarn"}})
