"""The zoo's measuring steps on tiny models (the real ones need `make zoo`'s torch venv)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from tests.toolchain.optimize.fixtures import flatten_after_global_pool
from zoo.measure import coverage_cells, fix_batch_and_simplify, run_optimize
from zoo.table import after_cells, cell_text


def dynamic_batch_conv(path: Path) -> Path:
    """Conv(3 -> 4, 3x3) on input [N, 3, 8, 8], saved to ``path``."""
    weight = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])],
        "dynamic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])],
        initializer=[numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return path


def test_fix_batch_and_simplify(tmp_path: Path) -> None:
    source = dynamic_batch_conv(tmp_path / "dyn.onnx")
    shapes = fix_batch_and_simplify(source, tmp_path / "b1.onnx")
    assert shapes == {"x": [1, 3, 8, 8]}
    fixed = onnx.load(str(tmp_path / "b1.onnx"))
    dims = [d.dim_value for d in fixed.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 8, 8]
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    outs = [
        ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        for p in (source, tmp_path / "b1.onnx")
    ]
    np.testing.assert_array_equal(outs[0], outs[1])


def test_coverage_cells_per_version_and_format(tmp_path: Path) -> None:
    path = tmp_path / "flatten.onnx"
    onnx.save(flatten_after_global_pool(), str(path))
    cells = coverage_cells(path)["cells"]
    for version in ("1.23", "1.32"):
        # MLProgram rejects the Flatten: pool | three Gemms; NeuralNetwork takes all five.
        assert cell_text(cells[version]["mlprogram"]) == "4/5 in 2, 100.00%"
        assert cell_text(cells[version]["neuralnetwork"]) == "5/5 in 1, 100.00%"


def test_optimize_record_renders(tmp_path: Path) -> None:
    """The real `toolchain optimize --json` record has what the table reads."""
    path = tmp_path / "flatten.onnx"
    onnx.save(flatten_after_global_pool(), str(path))
    run = run_optimize(path, tmp_path / "out.onnx", "mlprogram")
    assert (run["exit_code"], run["error"]) == (0, "")
    for version in ("1.23", "1.32"):
        cell, diff, seconds = after_cells(run, version, "mlprogram")
        assert cell == "5/5 in 1, 100.00%"  # Flatten -> Reshape: one partition
        assert float(diff) <= 1e-4 and float(seconds) > 0
    assert (tmp_path / "out.onnx").is_file()
