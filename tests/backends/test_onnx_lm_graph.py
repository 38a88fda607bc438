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
    quantize_columns,
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


def test_int8_weights_stay_in_range():
    weight = np.random.default_rng(0).standard_normal((6, 10)).astype(np.float32)
    for largest in (127, 63):
        q, scale = quantize_columns(weight, largest)
        assert q.shape == (10, 6) and np.abs(q).max() == largest
        assert np.abs(q.T * scale[:, None] - weight).max() <= scale.max() / 2 + 1e-6
