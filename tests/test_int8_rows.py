"""int8 products with a scale per row, run by ONNX Runtime."""

import numpy as np
import pytest

from polarity.int8_rows import GraphBuilder, RowProducts, quantize_columns, rewrite_matmuls


def test_int8_weights_stay_in_range():
    weight = np.random.default_rng(0).standard_normal((6, 10)).astype(np.float32)
    for largest in (127, 63):
        q, scale = quantize_columns(weight, largest)
        assert q.shape == (10, 6) and np.abs(q).max() == largest
        assert np.abs(q.T * scale[:, None] - weight).max() <= scale.max() / 2 + 1e-6


def row_product(weight: np.ndarray, largest: int):
    """A session computing ``x @ weight.T`` through :class:`RowProducts`."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    g = GraphBuilder()
    rows = RowProducts(g, largest)
    y = rows.product(*rows.quantize("x"), weight)
    g.nodes.append(helper.make_node("Identity", [y], ["y"]))
    model = helper.make_model(helper.make_graph(
        g.nodes, "rows", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 24])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])], g.initializers),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return lambda x: session.run(["y"], {"x": x.astype(np.float32)})[0]


def test_a_row_keeps_its_answer_whatever_the_other_rows_hold():
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((8, 24)).astype(np.float32)
    x = rng.standard_normal((5, 24)).astype(np.float32)
    run = row_product(weight, 63)
    alone = np.concatenate([run(x[i:i + 1]) for i in range(5)])
    outlier = x.copy()
    outlier[0, 3] = 400.0  # one token's huge value: its own scale, not the others'
    together = run(outlier)
    assert np.array_equal(together[1:], alone[1:])
    exact = x @ weight.T
    # 8-bit rows x 7-bit columns: a few hundredths of the products' size
    assert np.abs(alone - exact).max() < 0.05 * np.abs(exact).max()


def matmul_model(rank: int, opset: int = 17):
    """``y = relu(x @ W1) @ W2`` with ``x`` of ``rank`` axes: two float products."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    w1, w2 = (rng.standard_normal(shape).astype(np.float32) for shape in ((16, 24), (24, 8)))
    shape = ["B", "T", 16][-rank:]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="up"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "w2"], ["y"], name="down")]
    graph = helper.make_graph(
        nodes, "two", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [*shape[:-1], 8])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), w1, w2


@pytest.mark.parametrize("rank", [2, 3])
def test_rewritten_products_compute_what_the_float_ones_did(rank):
    ort = pytest.importorskip("onnxruntime")
    model, w1, w2 = matmul_model(rank)
    assert rewrite_matmuls(model, {"down"}) == 1
    assert rewrite_matmuls(model, {"down"}) == 0  # nothing of that name left
    assert rewrite_matmuls(model, {"up"}) == 1  # a second pass: names of its own
    assert not {"w1", "w2"} & {i.name for i in model.graph.initializer}  # nothing reads them
    assert [n.op_type for n in model.graph.node].count("MatMulIntegerToFloat") == 2
    assert all(n.name for n in model.graph.node)
    outputs = [name for node in model.graph.node for name in node.output]
    assert len(outputs) == len(set(outputs))
    x = np.random.default_rng(6).standard_normal((2, 5, 16)[-rank:]).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    got = session.run(["y"], {"x": x})[0]
    want = np.maximum(x @ w1, 0) @ w2
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max()  # two int8 products now


def test_opsets_the_nodes_are_not_written_for_are_refused():
    model, _, _ = matmul_model(2, opset=18)
    with pytest.raises(ValueError, match="opsets 13-17, not 18"):
        rewrite_matmuls(model, {"down"})
