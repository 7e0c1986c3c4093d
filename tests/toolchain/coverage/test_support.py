"""Each rule, on tiny graphs just inside and just outside it, per format and version."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from retinaface_coreml_toolchain.coverage.graph import Graph
from retinaface_coreml_toolchain.coverage.rules import table_for
from retinaface_coreml_toolchain.coverage.rules.table import Ctx
from retinaface_coreml_toolchain.coverage.support import Verdict, judge
from tests.toolchain.coverage.coverage_graphs import F16, I64, F, make_graph

ML, NN = "mlprogram", "neuralnetwork"


def verdict(graph: Graph, version: str, fmt: str, name: str, *, static: bool = False) -> Verdict:
    node = next(n for n in graph.nodes if n.name == name)
    ctx = Ctx(graph=graph, mlprogram=fmt == ML, require_static=static)
    return judge(node, table_for(version), ctx)


def ok(v: Verdict) -> bool:
    return v.supported and v.code is None


def unary(op: str, shape, dtype=F, opset: int = 13, **attrs) -> Graph:
    return make_graph(
        [helper.make_node(op, ["x"], ["y"], name="n", **attrs)],
        [("x", dtype, shape)],
        [("y", dtype, None)],
        opset=opset,
    )


# -- generic steps (spec §2.2) ----------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.22", "1.32"])
def test_no_builder(version: str) -> None:
    v = verdict(unary("Floor", [1, 4]), version, ML, "n")
    assert (v.supported, v.code) == (False, "no-builder")
    assert v.reason == f"the CoreML EP of ORT {version} has no builder for Floor"


def test_format_flatten_is_neuralnetwork_only() -> None:
    graph = unary("Flatten", [1, 2, 3])
    assert ok(verdict(graph, "1.23", NN, "n"))
    v = verdict(graph, "1.23", ML, "n")
    assert v.code == "format"
    assert "not supported in MLProgram format" in v.reason


def test_max_opset_moves_from_21_to_23() -> None:
    graph = make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="n")],
        [("x", F, [1, 2, 8, 8])],
        [("y", F, None)],
        {"w": np.ones((4, 2, 3, 3), np.float32)},
        opset=22,
    )
    v = verdict(graph, "1.22", ML, "n")
    assert v.code == "opset"
    assert v.reason == "Conv-22 is outside the supported opset range [1, 21] of ORT 1.22"
    assert ok(verdict(graph, "1.23", ML, "n"))


def test_split_min_opset_13_until_1_32() -> None:
    graph = make_graph(
        [helper.make_node("Split", ["x"], ["a", "b"], name="n", axis=1, split=[2, 2])],
        [("x", F, [1, 4])],
        [("a", F, None), ("b", F, None)],
        opset=11,
    )
    assert verdict(graph, "1.24", ML, "n").code == "opset"
    assert ok(verdict(graph, "1.32", ML, "n"))


def test_input_without_shape() -> None:
    v = verdict(unary("Relu", None), "1.23", ML, "n")
    assert (v.code, v.reason) == ("no-shape", "input 'x' has no shape information")


@pytest.mark.parametrize("fmt", [ML, NN])
def test_require_static_input_shapes(fmt: str) -> None:
    graph = unary("Relu", ["N", 4])
    assert ok(verdict(graph, "1.23", fmt, "n"))
    v = verdict(graph, "1.23", fmt, "n", static=True)
    assert v.code == "dynamic-shape"
    assert "RequireStaticInputShapes" in v.reason


def test_zero_dim_rejected_but_resize_allows_empty_inputs() -> None:
    assert verdict(unary("Relu", [0, 4]), "1.23", ML, "n").code == "zero-dim"
    graph = make_graph(
        [helper.make_node("Resize", ["x", "roi", "scales", "sizes"], ["y"], name="n",
                          mode="nearest", nearest_mode="floor",
                          coordinate_transformation_mode="asymmetric")],
        [("x", F, [1, 2, 4, 4])],
        [("y", F, None)],
        {"roi": np.zeros(0, np.float32), "scales": np.zeros(0, np.float32),
         "sizes": np.array([1, 2, 8, 8], np.int64)},
        opset=11,
    )  # fmt: skip
    assert ok(verdict(graph, "1.23", ML, "n"))


def test_generic_16384_limit_only_until_1_22() -> None:
    graph = unary("Relu", [1, 20000])
    v = verdict(graph, "1.22", ML, "n")
    assert v.code == "dim-limit"
    assert ok(verdict(graph, "1.23", ML, "n"))


def test_conv_16384_limit_from_1_23() -> None:
    graph = make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="n")],
        [("x", F, [1, 1, 1, 20000])],
        [("y", F, None)],
        {"w": np.ones((1, 1, 1, 1), np.float32)},
    )
    assert verdict(graph, "1.22", ML, "n").code == "dim-limit"  # generic input check
    v = verdict(graph, "1.23", ML, "n")
    assert v.code == "dim-limit"
    assert "convolution limit of 16384" in v.reason


def test_rank_above_5_rejected() -> None:
    assert verdict(unary("Relu", [1, 1, 1, 1, 1, 2]), "1.32", ML, "n").code == "rank"
    assert ok(verdict(unary("Relu", [1, 1, 1, 1, 2]), "1.32", ML, "n"))


@pytest.mark.parametrize(("dtype", "fmt", "supported"), [
    (F, NN, True), (F, ML, True), (F16, ML, True), (F16, NN, False), (I64, ML, False),
])  # fmt: skip
def test_default_input_type_rule(dtype: int, fmt: str, supported: bool) -> None:
    graph = make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"], name="n")],
        [("a", dtype, [2]), ("b", dtype, [2])],
        [("y", dtype, None)],
    )
    v = verdict(graph, "1.23", fmt, "n")
    assert v.supported is supported
    if not supported:
        assert v.code == "input-type"


def test_external_initializer_until_1_22() -> None:
    graph = make_graph(
        [helper.make_node("Mul", ["x", "w"], ["y"], name="n")],
        [("x", F, [2])],
        [("y", F, None)],
        {"w": np.ones(2, np.float32)},
    )
    graph = type(graph)(**{**graph.__dict__, "external_initializers": frozenset({"w"})})
    v = verdict(graph, "1.22", ML, "n")
    assert v.code == "external-data"
    assert ok(verdict(graph, "1.23", ML, "n"))


# -- builders (spec §3.2) -----------------------------------------------------------------------


def reshape_graph(data_shape, shape_const: bool) -> Graph:
    inits = {"s": np.array([1, -1], np.int64)} if shape_const else {}
    inputs = [("x", F, data_shape)] + ([] if shape_const else [("s", I64, [2])])
    return make_graph(
        [helper.make_node("Reshape", ["x", "s"], ["y"], name="/class_head/Reshape")],
        inputs,
        [("y", F, None)],
        inits,
    )


@pytest.mark.parametrize("fmt", [ML, NN])
def test_reshape(fmt: str) -> None:
    assert ok(verdict(reshape_graph([1, 4, 2], True), "1.32", fmt, "/class_head/Reshape"))
    v = verdict(reshape_graph([1, 4, 2], False), "1.32", fmt, "/class_head/Reshape")
    assert v.code == "input-not-constant"
    assert v.reason.startswith("the shape input ('s') is not a constant initializer")
    v = verdict(reshape_graph(["N", 4, 2], True), "1.32", fmt, "/class_head/Reshape")
    assert v.code == "dynamic-shape"
    assert "[?, 4, 2]" in v.reason


def test_softmax_static_rule_changes_in_1_23() -> None:
    dyn13 = unary("Softmax", ["N", 2], opset=13, axis=-1)
    assert verdict(dyn13, "1.22", ML, "n").code == "dynamic-shape"
    assert ok(verdict(dyn13, "1.23", ML, "n"))
    dyn11 = unary("Softmax", ["N", 2], opset=11, axis=1)
    v = verdict(dyn11, "1.23", NN, "n")
    assert v.code == "dynamic-shape"
    assert v.reason.startswith("Softmax-11 (opset < 13) needs a static input")
    assert ok(verdict(unary("Softmax", [3, 2], opset=11, axis=1), "1.23", NN, "n"))


def resize_graph(*, sizes_const: bool = True, scales: list[float] | None = None,
                 shape=(1, 2, 4, 4), **attrs) -> Graph:  # fmt: skip
    attrs = {"mode": "nearest", "nearest_mode": "floor",
             "coordinate_transformation_mode": "asymmetric", **attrs}  # fmt: skip
    inits = {"roi": np.zeros(0, np.float32)}
    inputs = [("x", F, list(shape))]
    if scales is not None:
        inits["scales"] = np.array(scales, np.float32)
        names = ["x", "roi", "scales"]
    else:
        inits["scales"] = np.zeros(0, np.float32)
        names = ["x", "roi", "scales", "sizes"]
        if sizes_const:
            inits["sizes"] = np.array([1, 2, 8, 8], np.int64)
        else:
            inputs.append(("sizes", I64, [4]))
    return make_graph(
        [helper.make_node("Resize", names, ["y"], name="n", **attrs)],
        inputs, [("y", F, None)], inits, opset=11,
    )  # fmt: skip


@pytest.mark.parametrize("fmt", [ML, NN])
def test_resize(fmt: str) -> None:
    assert ok(verdict(resize_graph(), "1.23", fmt, "n"))
    v = verdict(resize_graph(sizes_const=False), "1.23", fmt, "n")
    assert v.code == "input-not-constant"
    assert v.reason.startswith("the sizes input ('sizes') is not a constant initializer")
    v = verdict(resize_graph(scales=[1, 1, 2, 2], shape=(1, 2, "H", "W")), "1.23", fmt, "n")
    assert v.code == "dynamic-shape"
    assert ok(verdict(resize_graph(scales=[1, 1, 2, 2]), "1.23", fmt, "n"))
    assert verdict(resize_graph(nearest_mode="round_prefer_floor"), "1.23", fmt, "n").code == (
        "attribute"
    )


def test_resize_coordinate_mode_per_format() -> None:
    graph = resize_graph(mode="linear", coordinate_transformation_mode="half_pixel")
    assert ok(verdict(graph, "1.23", ML, "n"))
    assert verdict(graph, "1.23", NN, "n").code == "attribute"


def test_resize_sizes_on_dynamic_input_is_ml_only() -> None:
    graph = resize_graph(shape=(1, 2, "H", "W"))
    assert ok(verdict(graph, "1.23", ML, "n"))
    assert verdict(graph, "1.23", NN, "n").code == "dynamic-shape"


def gather_graph(data_shape) -> Graph:
    return make_graph(
        [helper.make_node("Gather", ["d", "i"], ["y"], name="n", axis=0)],
        [("d", I64, data_shape)],
        [("y", I64, None)],
        {"i": np.array(2, np.int64)},
    )


@pytest.mark.parametrize("fmt", [ML, NN])
def test_gather_scalar_indices_from_1_32(fmt: str) -> None:
    v = verdict(gather_graph([4]), "1.24", fmt, "n")
    assert v.code == "scalar-indices"
    assert ok(verdict(gather_graph([4]), "1.32", fmt, "n"))
    v = verdict(gather_graph(["R"]), "1.32", fmt, "n")
    assert v.code == "scalar-indices"
    assert "need a static data shape" in v.reason


def test_gather_mlprogram_from_1_22() -> None:
    graph = make_graph(
        [helper.make_node("Gather", ["d", "i"], ["y"], name="n")],
        [("d", F, [4, 3])],
        [("y", F, None)],
        {"i": np.array([0, 2], np.int64)},
    )
    assert ok(verdict(graph, "1.22", ML, "n"))


def test_unsqueeze() -> None:
    graph = unary("Unsqueeze", [2, 3], opset=11, axes=[0])
    assert ok(verdict(graph, "1.23", ML, "n"))
    assert verdict(graph, "1.23", NN, "n").code == "format"
    assert verdict(unary("Unsqueeze", [], I64, 11, axes=[0]), "1.23", ML, "n").code == (
        "input-type"
    )
    assert verdict(unary("Unsqueeze", [1, 1, 1, 1, 2], opset=11, axes=[0]), "1.23", ML,
                   "n").code == "rank"  # fmt: skip


def concat_graph(rank: int, axis: int, dtype=F) -> Graph:
    shape = [1, 2, 3, 4][:rank]
    return make_graph(
        [helper.make_node("Concat", ["a", "b"], ["y"], name="n", axis=axis)],
        [("a", dtype, shape), ("b", dtype, shape)],
        [("y", dtype, None)],
    )


def test_concat() -> None:
    assert ok(verdict(concat_graph(4, 1), "1.23", NN, "n"))
    assert verdict(concat_graph(4, 2), "1.23", NN, "n").code == "nn-axis"
    v = verdict(concat_graph(3, 1), "1.23", NN, "n")
    assert v.code == "nn-rank"
    assert ok(verdict(concat_graph(3, 1), "1.23", ML, "n"))
    assert verdict(concat_graph(1, 0, I64), "1.32", ML, "n").code == "input-type"


def test_shape() -> None:
    assert ok(verdict(unary("Shape", [1, 3, "H", "W"]), "1.23", NN, "n"))
    assert ok(verdict(unary("Shape", [1, 3, "H", "W"]), "1.23", ML, "n"))
    sliced = unary("Shape", [1, 3, 4, 4], opset=15, start=2)
    assert ok(verdict(sliced, "1.23", ML, "n"))
    assert verdict(sliced, "1.23", NN, "n").code == "attribute"
    assert verdict(unary("Shape", [2], I64), "1.23", ML, "n").code == "input-type"


def slice_graph(data_shape, starts, ends) -> Graph:
    return make_graph(
        [helper.make_node("Slice", ["x", "s", "e"], ["y"], name="n")],
        [("x", I64, data_shape)],
        [("y", I64, None)],
        {"s": np.array(starts, np.int64), "e": np.array(ends, np.int64)},
    )


def test_slice() -> None:
    assert ok(verdict(slice_graph([4], [0], [2]), "1.23", NN, "n"))
    assert verdict(slice_graph(["R"], [0], [2]), "1.23", ML, "n").code == "dynamic-shape"
    v = verdict(slice_graph([4], [3], [1]), "1.23", ML, "n")
    assert (v.code, v.reason) == ("empty", "empty range [3, 1) with step 1")


def test_conv_weight_must_be_constant_in_neuralnetwork() -> None:
    graph = make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="n")],
        [("x", F, [1, 2, 8, 8]), ("w", F, [4, 2, 3, 3])],
        [("y", F, None)],
    )
    assert ok(verdict(graph, "1.23", ML, "n"))
    assert verdict(graph, "1.23", NN, "n").code == "input-not-constant"


def test_cast() -> None:
    graph = make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="r"),
         helper.make_node("Cast", ["r"], ["y"], name="n", to=TensorProto.INT32)],
        [("x", F, [2])], [("y", TensorProto.INT32, None)],
    )  # fmt: skip
    assert ok(verdict(graph, "1.23", ML, "n"))
    assert verdict(graph, "1.23", NN, "n").code == "input-type"  # NN: only ArgMax int64
    direct = unary("Cast", [2], to=TensorProto.INT32)
    assert verdict(direct, "1.23", ML, "n").code == "inputs"


def test_pad_mlprogram_from_1_32() -> None:
    graph = make_graph(
        [helper.make_node("Pad", ["x", "p", "c"], ["y"], name="n", mode="constant")],
        [("x", F, [1, 1, 4, 4])],
        [("y", F, None)],
        {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "c": np.array(0, np.float32)},
    )
    assert ok(verdict(graph, "1.24", NN, "n"))
    assert verdict(graph, "1.24", ML, "n").code == "format"
    assert ok(verdict(graph, "1.32", ML, "n"))


def test_prelu_slope_layout() -> None:
    def prelu(slope: np.ndarray) -> Graph:
        return make_graph(
            [helper.make_node("PRelu", ["x", "s"], ["y"], name="n")],
            [("x", F, [1, 3, 4, 4])], [("y", F, None)], {"s": slope},
        )  # fmt: skip

    assert ok(verdict(prelu(np.ones((3, 1, 1), np.float32)), "1.23", NN, "n"))
    assert verdict(prelu(np.ones((1, 3, 1, 1), np.float32)), "1.23", NN, "n").code == ("attribute")
