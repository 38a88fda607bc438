"""A Qwen2 or Llama-style causal LM (q, k, v biases where the model has them, any head size)
written as one ONNX graph whose products run in int8 on ONNX Runtime, built straight from a
float16 Hugging Face folder one tensor at a time.

What the graph computes for a call of ``B`` texts of ``T`` new tokens each (shorter ones
padded at the end), after ``P`` cached tokens (the prompt's head): the label tokens' logits at
each text's own last token, and each layer's keys and values (so the same graph computes the
head's cache once).

Every product of the layers runs in int8 with a scale per row (per token), as CTranslate2
quantises them (:mod:`polarity.int8_rows`: why a text's answer then does not depend on its
company; weights in [-63, 63] where the CPU's int8 sums would saturate).
Norms, attention and the two label rows of the output layer stay float32. The embedding table
stays outside the graph (float16, read with ``numpy.load(mmap_mode="r")``): a lookup.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from polarity.int8_rows import GraphBuilder, RowProducts

GRAPH_FILE, WEIGHTS_FILE, EMBEDDINGS_FILE, SHAPES_FILE = (
    "model.onnx", "weights.bin", "embeddings.npy", "shapes.json")
OPSET = 17


class _Builder:
    """The layers, on a residual stream of ``[B x T, hidden]`` rows."""

    def __init__(self, graph: GraphBuilder, tensors, config: dict, int8: bool = True,
                 largest: int = 127, join: bool = True):
        self.g, self.t, self.int8, self.join = graph, tensors, int8, join
        self.rows = RowProducts(graph, largest)
        self.hidden = config["hidden_size"]
        self.heads = config["num_attention_heads"]
        self.kv_heads = config.get("num_key_value_heads") or self.heads
        self.head_dim = config.get("head_dim") or self.hidden // self.heads
        self.eps = float(config.get("rms_norm_eps", 1e-6))
        self.axis_last = graph.const(np.array([-1], np.int64))

    def shapes(self, embeds: str) -> None:
        """Shape tensors of the call (batch and length come with the input)."""
        g = self.g
        batch_length = g.op("Slice", [g.op("Shape", [embeds]), g.const(np.array([0], np.int64)),
                                      g.const(np.array([2], np.int64))])
        self.q_shape = g.op("Concat", [batch_length, g.const(np.array(
            [self.heads, self.head_dim], np.int64))], axis=0)
        self.kv_shape = g.op("Concat", [batch_length, g.const(np.array(
            [self.kv_heads, self.head_dim], np.int64))], axis=0)
        self.expand_shape = g.op("Concat", [g.op("Slice", [
            batch_length, g.const(np.array([0], np.int64)), g.const(np.array([1], np.int64))]),
            g.const(np.array([1, 1, 1], np.int64))], axis=0)

    def norm(self, x: str, weight: str) -> str:
        # ONNX Runtime's RMS norm kernel (registered in the ONNX domain)
        return self.g.op("SimplifiedLayerNormalization",
                         [x, self.g.const(self.t(weight).astype(np.float32), "norm")],
                         axis=-1, epsilon=self.eps)

    def linear(self, x: str, names: list[str]) -> list[str]:
        """``x @ W.T (+ b where the model has one)`` for each weight of ``names``, in int8 with
        one scale per row of ``x`` and per output channel. The weights that share ``x`` (q, k
        and v; gate and up) run as one product split after: one quantised ``x`` and one
        larger product instead of several, each output column computed as it was alone."""
        if not self.join and len(names) > 1:  # the layout before (benchmarks compare them)
            return [y for n in names for y in self.linear(x, [n])]
        g = self.g
        weights = [self.t(f"{n}.weight") for n in names]
        joined = np.concatenate(weights) if len(weights) > 1 else weights[0]
        if self.int8:
            y = self.rows.product(*self.rows.quantize(x), joined)
        else:  # float32 products: the graph alone, checked against PyTorch
            y = g.op("MatMul", [x, g.const(np.ascontiguousarray(joined.astype(np.float32).T))])
        out = [y] if len(weights) == 1 else g.op(
            "Split", [y, g.const(np.array([len(w) for w in weights], np.int64))],
            outputs=len(weights), axis=-1)
        return [g.op("Add", [y, g.const(self.t(f"{n}.bias").astype(np.float32), "bias")])
                if self.t.has(f"{n}.bias") else y for y, n in zip(out, names, strict=True)]

    def rotate(self, x: str, cos: str, sin: str) -> str:
        g, half = self.g, self.head_dim // 2
        first = g.op("Slice", [x, g.const(np.array([0], np.int64)),
                               g.const(np.array([half], np.int64)), self.axis_last])
        second = g.op("Slice", [x, g.const(np.array([half], np.int64)),
                                g.const(np.array([self.head_dim], np.int64)), self.axis_last])
        turned = g.op("Concat", [g.op("Neg", [second]), first], axis=-1)
        return g.op("Add", [g.op("Mul", [x, cos]), g.op("Mul", [turned, sin])])

    def attention(self, x: str, prefix: str, feeds: dict, layer: int) -> tuple[str, str, str]:
        g, d = self.g, self.head_dim
        q, k, v = self.linear(x, [f"{prefix}.{p}_proj" for p in "qkv"])
        q, k, v = (g.op("Transpose", [g.op("Reshape", [y, shape])], perm=[0, 2, 1, 3])
                   for y, shape in ((q, self.q_shape), (k, self.kv_shape), (v, self.kv_shape)))
        q = self.rotate(q, feeds["cos"], feeds["sin"])
        k = self.rotate(k, feeds["cos"], feeds["sin"])
        keys = g.op("Concat", [g.op("Expand", [f"past_key.{layer}", self.expand_shape]), k],
                    axis=2)
        values = g.op("Concat", [g.op("Expand", [f"past_value.{layer}", self.expand_shape]),
                                 v], axis=2)
        # query heads that share a key head side by side: [B, kv heads, group x T, d]
        grouped = g.op("Reshape", [g.op("Mul", [q, g.const(np.array(d ** -0.5, np.float32))]),
                                   g.const(np.array([0, self.kv_heads, -1, d], np.int64))])
        scores = g.op("Add", [g.op("MatMul", [grouped, g.op("Transpose", [keys],
                                                            perm=[0, 1, 3, 2])]), feeds["mask"]])
        context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), values])
        context = g.op("Reshape", [g.op("Transpose", [g.op("Reshape", [
            context, g.const(np.array([0, self.heads, -1, d], np.int64))])], perm=[0, 2, 1, 3]),
            g.const(np.array([-1, self.heads * d], np.int64))])
        return self.linear(context, [f"{prefix}.o_proj"])[0], keys, values

    def mlp(self, x: str, prefix: str) -> str:
        g = self.g
        gate, up = self.linear(x, [f"{prefix}.gate_proj", f"{prefix}.up_proj"])
        return self.linear(g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate])]), up]),
                           [f"{prefix}.down_proj"])[0]


def build_graph(source: Path, out: Path, label_ids: list[int], int8: bool = True,
                largest: int = 127, maxima: dict[str, np.ndarray] | None = None,
                join: bool = True) -> Path:
    """Write ``out``/model.onnx (+ weights.bin, embeddings.npy, shapes.json) from the float16
    Hugging Face folder ``source`` (:func:`polarity.backends.merge.merge_adapter`); with
    ``int8`` False the products stay float32; int8 weights lie in ``[-largest, largest]``
    (63 where the CPU's int8 sums saturate: :func:`polarity.cpu.exact_int8_products`). With
    ``maxima`` (:func:`polarity.backends.onnx_lm_smooth.activation_maxima`) the products'
    outlier channels are smoothed into their weights first."""
    from onnx import save

    config = json.loads((source / "config.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    tensors = _Tensors(source)
    if maxima:
        from polarity.backends.onnx_lm_smooth import Smoothed, smoothing_factors

        tensors = Smoothed(tensors, smoothing_factors(tensors, maxima))
    np.save(out / EMBEDDINGS_FILE, tensors("model.embed_tokens.weight").astype(np.float16))
    graph = GraphBuilder(out / WEIGHTS_FILE)
    try:
        builder = _Builder(graph, tensors, config, int8, largest, join)
        model = _model(graph, builder, tensors, config["num_hidden_layers"], label_ids)
    finally:
        graph.blob.close()
    save(model, str(out / GRAPH_FILE))
    (out / SHAPES_FILE).write_text(json.dumps({
        "layers": config["num_hidden_layers"], "kv_heads": builder.kv_heads,
        "heads": builder.heads, "head_dim": builder.head_dim,
        "rope_theta": rope_theta(config), "label_ids": list(label_ids)}, indent=1))
    return out


def _model(graph: GraphBuilder, b: _Builder, tensors, layers: int, label_ids: list[int]):
    from onnx import TensorProto, helper

    f32 = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("inputs_embeds", f32, ["B", "T", b.hidden]),
              helper.make_tensor_value_info("cos", f32, ["T", b.head_dim]),
              helper.make_tensor_value_info("sin", f32, ["T", b.head_dim]),
              helper.make_tensor_value_info("mask", f32, ["GT", "PT"]),
              helper.make_tensor_value_info("last", TensorProto.INT64, ["B"])]
    outputs = []
    cache = [1, b.kv_heads, "P", b.head_dim]
    for layer in range(layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_{kind}.{layer}", f32, cache))
    b.shapes("inputs_embeds")
    x = graph.op("Reshape", ["inputs_embeds", graph.const(np.array([-1, b.hidden], np.int64))])
    feeds = {"cos": "cos", "sin": "sin", "mask": "mask"}
    for layer in range(layers):
        prefix = f"model.layers.{layer}"
        attended, keys, values = b.attention(
            b.norm(x, f"{prefix}.input_layernorm.weight"), f"{prefix}.self_attn", feeds, layer)
        x = graph.op("Add", [x, attended])
        x = graph.op("Add", [x, b.mlp(b.norm(x, f"{prefix}.post_attention_layernorm.weight"),
                                      f"{prefix}.mlp")])
        for kind, name in (("key", keys), ("value", values)):
            graph.nodes.append(helper.make_node("Identity", [name], [f"present_{kind}.{layer}"]))
            outputs.append(helper.make_tensor_value_info(
                f"present_{kind}.{layer}", f32, ["B", b.kv_heads, "PT", b.head_dim]))
    last = graph.op("Gather", [x, "last"], axis=0)  # each text's own last row
    head = tensors("lm_head.weight" if tensors.has("lm_head.weight")
                   else "model.embed_tokens.weight")
    rows = np.ascontiguousarray(head[label_ids].astype(np.float32).T)
    graph.nodes.append(helper.make_node("MatMul", [b.norm(last, "model.norm.weight"),
                                                   graph.const(rows, "labels")], ["logits"]))
    outputs.insert(0, helper.make_tensor_value_info("logits", f32, ["B", len(label_ids)]))
    model = helper.make_model(helper.make_graph(graph.nodes, "causal_lm", inputs, outputs,
                                                graph.initializers),
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model


#: The architectures the graph writes (Llama-style blocks; Qwen2's q, k, v biases).
ARCHITECTURES = ("qwen2", "llama")


def unsupported(config: dict) -> str | None:
    """Why the graph cannot be written for a model of ``config`` (None when it can)."""
    if config.get("model_type") not in ARCHITECTURES:
        return (f"the onnx_lm runtime writes {', '.join(ARCHITECTURES)} models, not "
                f"{config.get('model_type')!r}")
    try:
        rope_theta(config)
    except ValueError as exc:
        return str(exc)
    return None


def rope_theta(config: dict) -> float:
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind not in ("default", None):
        raise ValueError(f"rope type {kind!r} is not supported by the onnx runtime of the "
                         "causal LM; run it with --runtime ctranslate2 or torch")
    return float(rope.get("rope_theta", config.get("rope_theta", 10000.0)))


class _Tensors:
    """A safetensors folder's tensors by name, read one at a time as numpy arrays."""

    def __init__(self, folder: Path):
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            self.where = {k: folder / v for k, v in
                          json.loads(index.read_text())["weight_map"].items()}
        else:
            from safetensors import safe_open

            self.where = {}
            for file in sorted(folder.glob("*.safetensors")):
                with safe_open(str(file), framework="np") as f:
                    self.where.update(dict.fromkeys(f.keys(), file))

    def has(self, name: str) -> bool:
        return name in self.where

    def __call__(self, name: str) -> np.ndarray:
        from safetensors import safe_open

        with safe_open(str(self.where[name]), framework="np") as f:
            return f.get_tensor(name)
