"""int8 products with one scale per row of the activations, written as ONNX nodes.

Weights are int8, symmetric, one scale per output channel; each row (token) of the input is
quantised with a scale of its own, computed in the graph from that row's largest magnitude,
and the product runs as ONNX Runtime's ``MatMulIntegerToFloat`` (MLAS: VNNI, and AMX where the
CPU has it). A row's scale depends on that row alone, so a text's answer is the same whatever
else is in its call (ONNX Runtime's dynamic quantisation uses one scale for the whole call),
and a row's few outlier values cost that row its resolution, not every row's (a static scale,
fixed on calibration texts, is set by the largest value any token ever had).

Both int8 graphs use it: the accurate tier's (:mod:`polarity.backends.onnx_lm_graph`),
written with these products from the start, and the encoder's (:mod:`polarity.quantize`),
whose exported ``MatMul`` nodes :func:`rewrite_matmuls` replaces.
"""

from __future__ import annotations

from collections.abc import Collection
from itertools import count
from pathlib import Path

import numpy as np

#: The largest int8 weight that no x86 CPU's u8 x s8 pair sums saturate on (16-bit sums
#: without VNNI: 2 x 255 x 63 < 32,767).
PORTABLE_LARGEST = 63
#: Opsets whose QuantizeLinear takes a scale per row and whose ReduceMax takes ``axes`` as an
#: attribute, as the nodes below are written.
OPSETS = range(13, 18)
_ALIGN = 4096  # external tensors start on a page: ONNX Runtime maps them where it can


def weight_range() -> int:
    """The largest int8 weight for the CPU at hand: 127, or :data:`PORTABLE_LARGEST` where
    u8 x s8 pair sums would saturate (x86 without VNNI:
    :func:`polarity.cpu.exact_int8_products`)."""
    from polarity.cpu import exact_int8_products

    return 127 if exact_int8_products() else PORTABLE_LARGEST


def quantize_columns(weight: np.ndarray, largest: int = 127) -> tuple[np.ndarray, np.ndarray]:
    """A ``[out, in]`` float weight as ``[in, out]`` int8 in ``[-largest, largest]`` and one
    float32 scale per output."""
    weight = weight.astype(np.float32)
    scale = np.abs(weight).max(axis=1) / largest
    scale[scale == 0] = 1.0
    q = np.rint(weight / scale[:, None]).clip(-largest, largest).astype(np.int8)
    return np.ascontiguousarray(q.T), scale.astype(np.float32)


class GraphBuilder:
    """Nodes, initializers and fresh names for a graph being written; with ``weights``,
    initializers of 1 KiB or more go to that one external file."""

    def __init__(self, weights: Path | None = None, prefix: str = ""):
        from onnx import helper

        self.helper, self.nodes, self.initializers, self.count = helper, [], [], 0
        self.prefix = prefix
        self.blob = weights.open("wb") if weights else None
        self.blob_name = weights.name if weights else ""

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{self.prefix}{stem}_{self.count}"

    def op(self, kind: str, inputs: list[str], outputs: int = 1, domain: str = "", **attrs):
        names = [self.name(kind) for _ in range(outputs)]
        self.nodes.append(self.helper.make_node(kind, inputs, names, name=names[0],
                                                domain=domain or None, **attrs))
        return names[0] if outputs == 1 else names

    def const(self, array, stem: str = "c") -> str:
        from onnx import TensorProto, numpy_helper

        array = np.asarray(array, order="C")  # keeps a scalar 0-d
        name = self.name(stem)
        if self.blob is None or array.nbytes < 1024:
            self.initializers.append(numpy_helper.from_array(array, name))
            return name
        pad = -self.blob.tell() % _ALIGN
        self.blob.write(b"\0" * pad)
        offset = self.blob.tell()
        self.blob.write(array.tobytes())
        tensor = TensorProto(name=name, dims=array.shape,
                             data_type=self.helper.np_dtype_to_tensor_dtype(array.dtype),
                             data_location=TensorProto.EXTERNAL)
        for key, value in (("location", self.blob_name), ("offset", offset),
                           ("length", array.nbytes)):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, str(value)
        self.initializers.append(tensor)
        return name


class RowProducts:
    """``x @ W.T`` in int8 with one scale per row of a 2-D ``x``, on ``graph``."""

    def __init__(self, graph: GraphBuilder, largest: int = 127):
        self.g, self.largest = graph, largest
        self.c127 = graph.const(np.array(127.0, np.float32))
        self.tiny = graph.const(np.array(1e-12, np.float32))
        self.zp = graph.const(np.array(128, np.uint8))
        self.one = graph.const(np.array(1.0, np.float32))
        self.flat = graph.const(np.array([-1], np.int64))

    def quantize(self, x: str) -> tuple[str, str]:
        """``x`` as uint8 (zero point 128) with one scale per row, and those scales."""
        g = self.g
        amax = g.op("Max", [g.op("ReduceMax", [x], axes=[-1], keepdims=1), g.op(
            "Neg", [g.op("ReduceMin", [x], axes=[-1], keepdims=1)])])  # no |x| copy
        row_scale = g.op("Div", [g.op("Max", [amax, self.tiny]), self.c127])
        scales = g.op("Reshape", [row_scale, self.flat])
        zero = g.op("ConstantOfShape", [g.op("Shape", [scales])],
                    value=g.helper.make_tensor("z", 2, [1], [128]))
        return g.op("QuantizeLinear", [x, scales, zero], axis=0), row_scale

    def product(self, xq: str, row_scale: str, weight: np.ndarray) -> str:
        """The quantised rows times ``weight`` (``[out, in]``, float)."""
        # a scalar scale for x keeps MLAS's fused kernel; the rows' scales follow
        q, scale = quantize_columns(weight, self.largest)
        return self.g.op("Mul", [self.g.op("MatMulIntegerToFloat", [
            xq, self.g.const(q, "w"), self.one, self.g.const(scale, "scale"), self.zp],
            domain="com.microsoft"), row_scale])


def rewrite_matmuls(model, names: Collection[str], largest: int = PORTABLE_LARGEST) -> int:
    """Replace, in place, each ``MatMul`` of ``names`` (``x @ W``, ``W`` a float
    initializer, ``x`` of any rank) by the same product in int8 with a scale per row of
    ``x``. Returns how many were replaced."""
    from onnx import helper, numpy_helper

    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset not in OPSETS:
        raise ValueError(f"int8 products with a scale per row are written for opsets "
                         f"{OPSETS.start}-{OPSETS.stop - 1}, not {opset}")
    if not any(node.name in names for node in graph.node):
        return 0
    weights = {init.name: init for init in graph.initializer}
    taken = [name for node in graph.node for name in node.output] + list(weights)
    prefix = next(p for p in (f"rows{i}/" for i in count())  # fresh even on a second pass
                  if not any(name.startswith(p) for name in taken))
    builder = GraphBuilder(prefix=prefix)
    rows = RowProducts(builder, largest)
    nodes, replaced = [], []
    for node in graph.node:
        if node.name not in names:
            nodes.append(node)
            continue
        first = len(builder.nodes)
        y, shape = _per_row(builder, rows, node.input[0],
                            numpy_helper.to_array(weights[node.input[1]]))
        nodes += builder.nodes[first:]
        nodes.append(helper.make_node("Reshape", [y, shape], list(node.output),
                                      name=node.name + "/rows"))
        replaced.append(node.input[1])
    still = {n for node in nodes for n in node.input} | {o.name for o in graph.output}
    gone = set(replaced) - still  # the float weights that nothing reads any more
    kept = [init for init in graph.initializer if init.name not in gone]
    inputs = [i for i in graph.input if i.name not in gone]
    del graph.node[:], graph.initializer[:], graph.input[:]
    graph.node.extend(nodes)
    graph.initializer.extend(kept + builder.initializers)
    graph.input.extend(inputs)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return len(replaced)


def _per_row(builder: GraphBuilder, rows: RowProducts, x: str, weight: np.ndarray
             ) -> tuple[str, str]:
    """``x`` (``[..., in]``) times ``weight`` (``[in, out]``) as 2-D rows, and the shape of
    ``x``'s leading axes with ``out`` to put the result back into."""
    flat = builder.op("Reshape", [x, builder.const(np.array([-1, weight.shape[0]], np.int64))])
    y = rows.product(*rows.quantize(flat), weight.T)
    lead = builder.op("Slice", [builder.op("Shape", [x]), builder.const(
        np.array([0], np.int64)), builder.const(np.array([-1], np.int64))])
    return y, builder.op("Concat", [lead, builder.const(np.array([weight.shape[1]], np.int64))],
                         axis=0)
