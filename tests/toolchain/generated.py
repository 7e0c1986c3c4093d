"""Small generated non-RetinaFace models for the toolchain's tests (onnx.helper)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def conv_model(path: Path, *, batch: int | str = 1, middle: str = "Relu", size: int = 16) -> Path:
    """x [batch, 3, size, size] -> Conv -> middle -> Conv -> Relu -> Conv -> y, opset 17."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    inits, nodes, prev = [], [], "x"
    for i, (cin, cout) in enumerate([(3, 8), (8, 8), (8, 4)]):
        w = numpy_helper.from_array(
            rng.standard_normal((cout, cin, 3, 3)).astype(np.float32) * 0.2, f"w{i}"
        )
        b = numpy_helper.from_array(rng.standard_normal(cout).astype(np.float32) * 0.1, f"b{i}")
        inits += [w, b]
        nodes.append(
            helper.make_node(
                "Conv", [prev, f"w{i}", f"b{i}"], [f"c{i}"], name=f"conv{i}", pads=[1] * 4
            )
        )
        prev = f"c{i}"
        if i < 2:
            op = middle if i == 0 else "Relu"
            nodes.append(helper.make_node(op, [prev], [f"a{i}"], name=f"{op.lower()}{i}"))
            prev = f"a{i}"
    nodes[-1].output[0] = "y"
    graph = helper.make_graph(
        nodes,
        path.stem,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, size, size])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
