"""int8 products with a scale per row, run by ONNX Runtime."""

import numpy as np
import pytest

from polarity.int8_rows import GraphBuilder, RowProducts, quantize_columns

pytest.importorskip("onnxruntime")


def test_int8_weights_stay_in_range():
    weight = np.random.default_rng(0).standard_normal((6, 10)).astype(np.float32)
    for largest in (127, 63):
        q, scale = quantize_columns(weight, largest)
        assert q.shape == (10, 6) and np.abs(q).max() == largest
        assert np.abs(q.T * scale[:, None] - weight).max() <= scale.max() / 2 + 1e-6


def row_product(weight: np.ndarray, largest: int):
    """A session computing ``x @ weight.T`` through :class:`RowProducts`."""
    import onnxruntime as ort
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
