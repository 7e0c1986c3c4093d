"""Tiny-graph builder and paths shared by the coverage tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from retinaface_coreml_toolchain.coverage.graph import Graph, graph_from_model

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "weights" / "retinaface_mobilenet025.onnx"
BUILT_BUCKETS = ROOT / "models" / "build" / "retinaface" / "buckets"

F, I64, F16 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.FLOAT16


def built_buckets() -> list[Path]:
    """Every bucket the build wrote (none before `make models`)."""
    return sorted(BUILT_BUCKETS.glob("*.onnx"))


Spec = tuple[str, int, Sequence[Any] | None]


def make_graph(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[Spec],
    outputs: Sequence[Spec],
    inits: dict[str, np.ndarray] | None = None,
    *,
    opset: int = 13,
    value_info: Sequence[Spec] = (),
) -> Graph:
    """A Graph straight from onnx.helper parts (no ORT level-1 pass: the graph is exact)."""
    graph = helper.make_graph(
        list(nodes),
        "tiny",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        initializer=[numpy_helper.from_array(v, k) for k, v in (inits or {}).items()],
        value_info=[helper.make_tensor_value_info(n, t, s) for n, t, s in value_info],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return graph_from_model(model, model_name="tiny.onnx", produced_by_ort="test")
