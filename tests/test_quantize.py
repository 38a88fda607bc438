"""The encoder's int8 schemes: which products the rewrite picks, and bad requests."""

import pytest

from polarity.errors import InputError
from polarity.quantize import down_projections_per_row, quantize_static_int8


def test_a_graph_without_down_projections_is_refused_not_left_as_it_was():
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="/classifier/MatMul")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(np.ones((4, 2), np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(InputError, match="found no FFN down-projection"):
        down_projections_per_row(model)
    assert [n.op_type for n in model.graph.node] == ["MatMul"]
    onnx.checker.check_model(model)


def test_an_unknown_scheme_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="choose one of float, rows"):
        quantize_static_int8(tmp_path / "in.onnx", tmp_path / "out.onnx",
                             tmp_path / "ranges.json", down="row")
