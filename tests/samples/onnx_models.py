"""Builders for ONNX test models (built with ``onnx.helper``; nothing here is executed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "external_tensor",
    "if_model",
    "linear_model",
    "save",
]


def _helpers() -> Any:
    import onnx

    return onnx


def linear_model(
    *,
    initializers: Sequence[Any] = (),
    extra_nodes: Sequence[Any] = (),
    functions: Sequence[Any] = (),
    opsets: Sequence[tuple[str, int]] = (),
) -> Any:
    """y = relu(x @ W + b): a normal model, optionally with extra nodes/initializers."""
    onnx = _helpers()
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    weight = numpy_helper.from_array(np.ones((4, 2), dtype=np.float32), "W")
    bias = numpy_helper.from_array(np.zeros(2, dtype=np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"], name="matmul"),
        helper.make_node("Add", ["xw", "b"], ["pre"], name="add"),
        helper.make_node("Relu", ["pre"], ["y"], name="relu"),
        *extra_nodes,
    ]
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2])],
        [weight, bias, *initializers],
    )
    opset = [helper.make_opsetid("", 17), *(helper.make_opsetid(d, v) for d, v in opsets)]
    return helper.make_model(
        graph, opset_imports=opset, functions=list(functions), producer_name="modelseal-tests"
    )


def external_tensor(name: str, location: str) -> Any:
    """A float tensor whose data lives in an external file at ``location``."""
    onnx = _helpers()
    tensor = onnx.TensorProto()
    tensor.name = name
    tensor.data_type = onnx.TensorProto.FLOAT
    tensor.dims.extend([4])
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    tensor.data_location = onnx.TensorProto.EXTERNAL
    return tensor


def if_model(then_nodes: Sequence[Any], then_initializers: Sequence[Any] = ()) -> Any:
    """A model whose If node holds ``then_nodes`` in its then-branch (two levels deep)."""
    onnx = _helpers()
    helper = onnx.helper
    out = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    inner_then = helper.make_graph(
        list(then_nodes) or [helper.make_node("Constant", [], ["y"], value_float=1.0, name="one")],
        "inner_then",
        [],
        [out],
        list(then_initializers),
    )
    inner_else = helper.make_graph(
        [helper.make_node("Constant", [], ["y"], value_float=0.0, name="zero")],
        "inner_else",
        [],
        [out],
    )
    inner_if = helper.make_node(
        "If", ["c"], ["y"], then_branch=inner_then, else_branch=inner_else, name="inner_if"
    )
    outer_then = helper.make_graph([inner_if], "outer_then", [], [out])
    outer_else = helper.make_graph(
        [helper.make_node("Constant", [], ["y"], value_float=2.0, name="two")],
        "outer_else",
        [],
        [out],
    )
    outer_if = helper.make_node(
        "If", ["c"], ["y"], then_branch=outer_then, else_branch=outer_else, name="outer_if"
    )
    graph = helper.make_graph(
        [outer_if],
        "branchy",
        [helper.make_tensor_value_info("c", onnx.TensorProto.BOOL, [])],
        [out],
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("evil.ops", 1)],
    )


def save(model: Any, path: Path) -> Path:
    """Serialize ``model`` to ``path`` (external data stays a reference; nothing is written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path
