"""MAC counts on tiny graphs, each figure worked out by hand in the comment beside it."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from retinaface_coreml_toolchain.coverage.api import analyse
from retinaface_coreml_toolchain.coverage.graph import Graph
from retinaface_coreml_toolchain.coverage.macs import count_macs
from retinaface_coreml_toolchain.coverage.report import format_macs, render_macs
from retinaface_coreml_toolchain.coverage.rules import table_for
from tests.toolchain.coverage.coverage_graphs import F, make_graph


def weights(*shape: int) -> np.ndarray:
    return np.ones(shape, dtype=np.float32)


def one_node(op: str, inputs: dict, inits: dict, opset: int = 14, **attrs) -> Graph:
    """``op`` over graph inputs ``inputs`` (name -> shape) and initializers, output ``y``."""
    node = helper.make_node(op, [*inputs, *inits], ["y"], name="n", **attrs)
    return make_graph(
        [node], [(k, F, v) for k, v in inputs.items()], [("y", F, None)], inits, opset=opset
    )


def macs_of(graph: Graph) -> int:
    count = count_macs(graph)
    assert count.uncounted == ()
    return count.per_node[0]


def test_conv() -> None:
    # out [1,4,8,8] = 256 elements, each a dot product over 3 channels x 3x3 = 27.
    graph = one_node("Conv", {"x": [1, 3, 8, 8]}, {"w": weights(4, 3, 3, 3)}, pads=[1, 1, 1, 1])
    assert macs_of(graph) == 256 * 27 == 6912


def test_depthwise_conv_with_stride() -> None:
    # out [1,4,4,4] = 64 elements, each over 1 channel (group=4) x 3x3 = 9.
    graph = one_node(
        "Conv", {"x": [1, 4, 8, 8]}, {"w": weights(4, 1, 3, 3)},
        group=4, strides=[2, 2], pads=[1, 1, 1, 1],
    )  # fmt: skip
    assert macs_of(graph) == 64 * 9 == 576


def test_conv_transpose() -> None:
    # 2x4x4 = 32 input elements, each scattered to 3 output channels x 2x2 = 12 outputs.
    # Seen from the output: [1,3,8,8] = 192 elements, each gets 2 channels x 1 tap = 2 -> 384.
    graph = one_node(
        "ConvTranspose", {"x": [1, 2, 4, 4]}, {"w": weights(2, 3, 2, 2)}, strides=[2, 2]
    )
    assert macs_of(graph) == 32 * 12 == 192 * 2 == 384


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([2, 3, 4], [4, 5], 2 * 3 * 5 * 4),  # batch 2, m 3, n 5, k 4
        ([4], [4, 5], 5 * 4),  # vector times matrix: n 5, k 4
        ([3, 4], [4], 3 * 4),  # matrix times vector: m 3, k 4
        ([2, 1, 3, 4], [1, 6, 4, 5], 2 * 6 * 3 * 5 * 4),  # broadcast batch [2,6]
    ],
)
def test_matmul(a: list[int], b: list[int], expected: int) -> None:
    assert macs_of(one_node("MatMul", {"a": a, "b": b}, {})) == expected


@pytest.mark.parametrize(
    ("a", "b", "attrs"),
    [
        ([3, 4], [4, 5], {}),
        ([3, 4], [5, 4], {"transB": 1}),
        ([4, 3], [4, 5], {"transA": 1}),
    ],
)
def test_gemm(a: list[int], b: list[int], attrs: dict) -> None:
    # M 3, N 5, K 4 in every layout.
    graph = one_node("Gemm", {"a": a}, {"b": weights(*b)}, **attrs)
    assert macs_of(graph) == 3 * 5 * 4 == 60


@pytest.mark.parametrize(
    ("equation", "a", "b"),
    [
        ("b i j , b j k -> b i k", [2, 3, 4], [2, 4, 5]),  # MTL's spelling, with spaces
        ("bij,bjk->bik", [2, 3, 4], [2, 4, 5]),
        ("...ij,...jk->...ik", [2, 3, 4], [2, 4, 5]),
        ("bij,jk->bik", [2, 3, 4], [4, 5]),
        ("bij,bjk->bik", [1, 3, 4], [2, 4, 5]),  # the size-1 b broadcasts to 2
    ],
)
def test_einsum_two_operands(equation: str, a: list[int], b: list[int]) -> None:
    # Loop nest over b 2, i 3, j 4, k 5.
    assert macs_of(one_node("Einsum", {"a": a, "b": b}, {}, equation=equation)) == 120


def test_einsum_of_one_operand_and_other_ops_count_zero() -> None:
    transpose = one_node("Einsum", {"a": [3, 4]}, {}, equation="ij->ji")
    assert count_macs(transpose).per_node == {0: 0}
    for op in ("Relu", "Sigmoid"):
        assert count_macs(one_node(op, {"x": [1, 8, 16, 16]}, {})).total == 0
    bn = one_node(
        "BatchNormalization", {"x": [1, 8, 1280]},
        {"s": weights(8), "b": weights(8), "m": weights(8), "v": weights(8)},
    )  # fmt: skip
    assert count_macs(bn).per_node == {}


def test_dynamic_batch_counts_as_one_other_dynamic_dims_are_uncounted() -> None:
    batch = one_node("Conv", {"x": ["N", 3, 8, 8]}, {"w": weights(4, 3, 3, 3)}, pads=[1, 1, 1, 1])
    count = count_macs(batch)
    assert (count.per_node, count.dynamic_batch_as_one) == ({0: 6912}, True)
    height = one_node("Conv", {"x": [1, 3, "H", 8]}, {"w": weights(4, 3, 3, 3)}, pads=[1, 1, 1, 1])
    count = count_macs(height)
    assert (count.per_node, count.uncounted, count.total) == ({}, (0,), 0)


def test_share_on_coreml_and_per_rejected_node() -> None:
    # Conv [1,4,8,8] (6912) -> Reshape [1,4,64] -> Einsum x.xT [1,4,4] (4*4*64 = 1024, no
    # builder in ORT 1.32) -> Conv-free tail. CoreML holds 6912 of 7936.
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Reshape", ["c", "shape"], ["r"], name="reshape"),
        helper.make_node("Einsum", ["r", "r"], ["y"], name="einsum", equation="bik,bjk->bij"),
    ]
    inits = {"w": weights(4, 3, 3, 3), "shape": np.array([1, 4, 64], dtype=np.int64)}
    graph = make_graph(nodes, [("x", F, [1, 3, 8, 8])], [("y", F, None)], inits, opset=14)
    cov = analyse(graph, table_for("1.32"), model_format="mlprogram", require_static_shapes=False)
    assert (cov.macs.total, cov.macs_on_coreml) == (7936, 6912)
    record = cov.to_dict()
    assert record["macs"] == {
        "total": 7936,
        "on_coreml": 6912,
        "share": round(6912 / 7936, 6),
        "uncounted": [],
        "dynamic_batch_as_one": False,
    }
    assert [(r["name"], r["macs"]) for r in record["rejected"]] == [("einsum", 1024)]
    assert render_macs(record["macs"]) == "MACs on CoreML: 87.09% (6.9 k of 7.9 k)"
    almost = {**record["macs"], "share": 0.99996, "dynamic_batch_as_one": True}
    assert render_macs(almost) == (
        "MACs on CoreML: 99.99% (6.9 k of 7.9 k); dynamic batch counted as 1"
    )


def test_format_macs() -> None:
    assert [format_macs(n) for n in (999, 81_920, 428_949_216, 17_351_606_272)] == [
        "999", "81.9 k", "428.9 M", "17.35 G",
    ]  # fmt: skip
