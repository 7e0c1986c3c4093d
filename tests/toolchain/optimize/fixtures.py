"""Tiny ONNX models, one per pattern the rewrite passes handle, shaped as in the app's models.

Each builder mirrors how the pattern appears in the exported MTL and STAR graphs at batch 1
after onnxsim (``make zoo``; node names, attributes, constant spellings and dtypes copied from
``models/zoo/mtl_b1.onnx`` and ``star_b1.onnx``), only with small sizes: MTL's 1280 features
become ``c=16``, STAR's 64x64 maps 8x8. Opset 14 and IR version 7, as torch 2.13 exports them.
Constants are initializers unless the real model has a ``Constant`` node there (the real
models mix both: onnxsim keeps a few scalars as ``Constant``).

``input_cases(model)`` gives the feeds a pass test should compare on: random, zeros,
negatives, and ties (repeated values, so TopK and comparisons meet equal candidates).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 14
IR_VERSION = 7
F = TensorProto.FLOAT
INT64_MAX = np.iinfo(np.int64).max


def _model(
    nodes: list[onnx.NodeProto],
    inputs: dict[str, list[int]],
    outputs: dict[str, list[int] | None],
    inits: dict[str, np.ndarray],
    name: str,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(k, F, v) for k, v in inputs.items()],
        [helper.make_tensor_value_info(k, F, v) for k, v in outputs.items()],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    model.producer_name = "tests.toolchain.optimize.fixtures"
    onnx.checker.check_model(model, full_check=True)
    return model


def _constant(name: str, value: np.ndarray) -> onnx.NodeProto:
    """A ``Constant`` node, as onnxsim leaves some scalars in the real models."""
    return helper.make_node(
        "Constant", [], [name], name=name.removesuffix("_output_0"),
        value=numpy_helper.from_array(value, name),
    )  # fmt: skip


def _weights(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


# MTL: the backbone's end. GlobalAveragePool -> Flatten(axis=1) -> three Gemm heads (ORT 1.23
# and 1.32 reject Flatten in MLProgram).
def flatten_after_global_pool(c: int = 16) -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    pool, flat = "/base_model/global_pool/pool/GlobalAveragePool", "/base_model/global_pool/flatten"
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], [f"{pool}_output_0"], name=pool),
        helper.make_node(
            "Flatten", [f"{pool}_output_0"], [f"{flat}/Flatten_output_0"],
            name=f"{flat}/Flatten", axis=1,
        ),
    ]  # fmt: skip
    inits = {}
    for head in ("fc_emotion", "fc_gaze", "fc_au"):
        nodes.append(
            helper.make_node(
                "Gemm", [f"{flat}/Flatten_output_0", f"{head}.weight", f"{head}.bias"], [head],
                name=f"/{head}/Gemm", alpha=1.0, beta=1.0, transB=1,
            )
        )  # fmt: skip
        inits[f"{head}.weight"] = _weights(rng, c, c)
        inits[f"{head}.bias"] = _weights(rng, c)
    outputs = {head: [1, c] for head in ("fc_emotion", "fc_gaze", "fc_au")}
    return _model(nodes, {"x": [1, c, 4, 4]}, outputs, inits, "flatten_after_global_pool")


# MTL's GNN: the similarity x·xᵀ, spelled with spaces around every subscript group.
def einsum_similarity(n: int = 8, c: int = 16) -> onnx.ModelProto:
    nodes = [
        helper.make_node(
            "Transpose", ["x"], ["/au_regressor/gnn/Transpose_output_0"],
            name="/au_regressor/gnn/Transpose", perm=[0, 2, 1],
        ),
        helper.make_node(
            "Einsum", ["x", "/au_regressor/gnn/Transpose_output_0"], ["y"],
            name="/au_regressor/gnn/Einsum", equation="b i j , b j k -> b i k",
        ),
    ]  # fmt: skip
    return _model(nodes, {"x": [1, n, c]}, {"y": [1, n, n]}, {}, "einsum_similarity")


# MTL's GNN: the aggregation A·V(x), spelled with spaces after the comma only.
def einsum_aggregate(n: int = 8, c: int = 16) -> onnx.ModelProto:
    nodes = [
        helper.make_node(
            "Einsum", ["a", "v"], ["y"],
            name="/au_regressor/gnn/Einsum_1", equation="b i j, b j k->b i k",
        )
    ]  # fmt: skip
    return _model(nodes, {"a": [1, n, n], "v": [1, n, c]}, {"y": [1, n, c]}, {}, "einsum_aggregate")


def einsum_batched_matmul(
    equation: str, a: list[int], b: list[int], out: list[int]
) -> onnx.ModelProto:
    """Any two-operand Einsum, for the other batched-matmul spellings a pass claims to handle,
    e.g. ``("bij,bkj->bik", [2,3,4], [2,5,4], [2,3,5])`` (A·Bᵀ)."""
    nodes = [helper.make_node("Einsum", ["a", "b"], ["y"], name="/einsum", equation=equation)]
    return _model(nodes, {"a": a, "b": b}, {"y": out}, {}, "einsum_batched_matmul")


# MTL's F.normalize(x, p=2, dim=-1): ReduceL2 (axes attribute at opset 14) -> Clip(min 1e-12,
# no max) -> Expand to x's shape (constant shape) -> Div. ORT has no builder for ReduceL2 or
# Expand.
def reduce_l2_normalize(n: int = 8, c: int = 16) -> onnx.ModelProto:
    head = "/au_regressor"
    nodes = [
        helper.make_node(
            "ReduceL2", ["x"], [f"{head}/ReduceL2_1_output_0"],
            name=f"{head}/ReduceL2_1", axes=[-1], keepdims=1,
        ),
        _constant(f"{head}/Constant_output_0", np.array(1e-12, dtype=np.float32)),
        helper.make_node(
            "Clip", [f"{head}/ReduceL2_1_output_0", f"{head}/Constant_output_0", ""],
            [f"{head}/Clip_1_output_0"], name=f"{head}/Clip_1",
        ),
        helper.make_node(
            "Expand", [f"{head}/Clip_1_output_0", "expand_shape"],
            [f"{head}/Expand_1_output_0"], name=f"{head}/Expand_1",
        ),
        helper.make_node("Div", ["x", f"{head}/Expand_1_output_0"], ["y"], name=f"{head}/Div_1"),
    ]  # fmt: skip
    inits = {"expand_shape": _i64(1, n, c)}
    return _model(nodes, {"x": [1, n, c]}, {"y": [1, n, c]}, inits, "reduce_l2_normalize")


def expand_constant_shape(
    n: int = 8, c: int = 16, *, consumer: str | None = "Mul"
) -> onnx.ModelProto:
    """Expand [1,n,1] -> [1,n,c] with a constant shape, read by ``consumer`` whose other input
    already has the full shape, as MTL's Div does (``reduce_l2_normalize`` has that Div, behind
    the Clip that keeps it finite; "Div" here gives inf/nan on the zeros case). None: the
    Expand's output is a graph output, so dropping it would change the output's shape."""
    nodes = [
        helper.make_node("Expand", ["s", "expand_shape"], ["e"], name="/au_regressor/Expand_1")
    ]
    inputs = {"s": [1, n, 1]}
    if consumer is None:
        nodes[0].output[0] = "y"
    else:
        nodes.append(
            helper.make_node(consumer, ["x", "e"], ["y"], name=f"/au_regressor/{consumer}_1")
        )
        inputs["x"] = [1, n, c]
    inits = {"expand_shape": _i64(1, n, c)}
    return _model(nodes, inputs, {"y": [1, n, c]}, inits, "expand_constant_shape")


def _batchnorm(
    x_shape: list[int], channels: int, *, shared_initializers: bool, name: str
) -> onnx.ModelProto:
    rng = np.random.default_rng(2)
    scale = rng.uniform(0.5, 1.5, channels).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32)
    mean = rng.standard_normal(channels).astype(np.float32)
    var = rng.uniform(0.5, 2.0, channels).astype(np.float32)
    if shared_initializers:
        # As in the real random-weight MTL: onnxsim merged equal initializers, so B and mean are
        # one tensor, scale and var another (and elsewhere in the graph too).
        inits = {
            "bn.ones": np.ones(channels, np.float32),
            "bn.zeros": np.zeros(channels, np.float32),
        }
        names = ["bn.ones", "bn.zeros", "bn.zeros", "bn.ones"]
    else:
        inits = {"bn.scale": scale, "bn.bias": bias, "bn.mean": mean, "bn.var": var}
        names = list(inits)
    nodes = [
        helper.make_node(
            "BatchNormalization", ["x", *names], ["y"],
            name="/au_regressor/gnn/bnv/BatchNormalization",
            epsilon=9.999999747378752e-06, momentum=0.8999999761581421, training_mode=0,
        )
    ]  # fmt: skip
    return _model(nodes, {"x": x_shape}, {"y": x_shape}, inits, name)


def batchnorm_rank3(
    n: int = 8, c: int = 16, *, shared_initializers: bool = False
) -> onnx.ModelProto:
    """MTL's BatchNorm1d(8) over dim 1 of [1, 8, 1280]: ORT wants a 4-D input."""
    return _batchnorm([1, n, c], n, shared_initializers=shared_initializers, name="batchnorm_rank3")


def batchnorm_rank2(batch: int = 4, c: int = 16) -> onnx.ModelProto:
    """BatchNorm1d on [N, C], the other rank ORT rejects."""
    return _batchnorm([batch, c], c, shared_initializers=False, name="batchnorm_rank2")


def pad_before_conv(
    c: int = 4,
    size: int = 16,
    *,
    kernel: int = 3,
    depthwise: bool = False,
    mode: str = "constant",
    value: float = 0.0,
) -> onnx.ModelProto:
    """timm's tf "same" padding: Pad(constant 0, pads only at the end of H and W) -> Conv with
    pads 0 and stride 2. In the exported MTL the pads are computed from shapes; once the shape is
    fixed they are constants like these (onnxsim itself then folds them into the Conv:
    conv_stem [0,0,1,1], the 5x5 depthwise blocks [1,1,2,2]). ``mode``/``value`` other than
    constant/0 give the cases a pass must leave alone."""
    rng = np.random.default_rng(3)
    total = max((-(-size // 2) - 1) * 2 + kernel - size, 0)  # TF SAME, stride 2
    begin, end = total // 2, total - total // 2
    prefix = "/base_model/conv_stem"
    nodes = [
        _constant(f"{prefix}/Constant_24_output_0", np.array(value, dtype=np.float32)),
        helper.make_node(
            "Pad", ["x", "pads", f"{prefix}/Constant_24_output_0"], [f"{prefix}/Pad_output_0"],
            name=f"{prefix}/Pad", mode=mode,
        ),
        helper.make_node(
            "Conv", [f"{prefix}/Pad_output_0", "w", "b"], ["y"], name=f"{prefix}/Conv",
            dilations=[1, 1], group=c if depthwise else 1, kernel_shape=[kernel, kernel],
            pads=[0, 0, 0, 0], strides=[2, 2],
        ),
    ]  # fmt: skip
    inits = {
        "pads": _i64(0, 0, begin, begin, 0, 0, end, end),
        "w": _weights(rng, c, 1 if depthwise else c, kernel, kernel),
        "b": _weights(rng, c),
    }
    out = -(-size // 2)
    return _model(
        nodes, {"x": [1, c, size, size]}, {"y": [1, c, out, out]}, inits, "pad_before_conv"
    )


def knn_adjacency(n: int = 8, c: int = 16, k: int = 4) -> onnx.ModelProto:
    """MTL's GNN graph building (metric 'dots', K=4) and normalize_digraph, then A·V:
    si = x·xᵀ; threshold = topk(si, K)[..., -1]; adj = float(si >= threshold);
    d = adj.sum(-1) ** -0.5; A = (eye·d)·adj·(eye·d); y = A·v. ORT rejects Einsum, TopK,
    GreaterOrEqual (both versions), the scalar Gather and the bool Cast (1.23)."""
    g = "/au_regressor/gnn"
    nodes = [
        helper.make_node("Transpose", ["x"], [f"{g}/Transpose_output_0"], name=f"{g}/Transpose",
                         perm=[0, 2, 1]),
        helper.make_node("Einsum", ["x", f"{g}/Transpose_output_0"], [f"{g}/Einsum_output_0"],
                         name=f"{g}/Einsum", equation="b i j , b j k -> b i k"),
        helper.make_node("TopK", [f"{g}/Einsum_output_0", "topk_k"],
                         [f"{g}/TopK_output_0", f"{g}/TopK_output_1"], name=f"{g}/TopK",
                         axis=-1, largest=1, sorted=1),
        helper.make_node("Gather", [f"{g}/TopK_output_0", "last"], [f"{g}/Gather_2_output_0"],
                         name=f"{g}/Gather_2", axis=2),
        helper.make_node("Reshape", [f"{g}/Gather_2_output_0", "column"],
                         [f"{g}/Reshape_output_0"], name=f"{g}/Reshape", allowzero=0),
        helper.make_node("GreaterOrEqual", [f"{g}/Einsum_output_0", f"{g}/Reshape_output_0"],
                         [f"{g}/GreaterOrEqual_output_0"], name=f"{g}/GreaterOrEqual"),
        helper.make_node("Cast", [f"{g}/GreaterOrEqual_output_0"], [f"{g}/Cast_output_0"],
                         name=f"{g}/Cast", to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", [f"{g}/Cast_output_0", "last_axis"],
                         [f"{g}/ReduceSum_output_0"], name=f"{g}/ReduceSum", keepdims=0),
        _constant(f"{g}/Constant_output_0", np.array(-0.5, dtype=np.float32)),
        helper.make_node("Pow", [f"{g}/ReduceSum_output_0", f"{g}/Constant_output_0"],
                         [f"{g}/Pow_output_0"], name=f"{g}/Pow"),
        helper.make_node("Reshape", [f"{g}/Pow_output_0", "column"],
                         [f"{g}/Reshape_2_output_0"], name=f"{g}/Reshape_2", allowzero=0),
        _constant(f"{g}/Constant_1_output_0", np.eye(n, dtype=np.float32)[None]),
        helper.make_node("Mul", [f"{g}/Constant_1_output_0", f"{g}/Reshape_2_output_0"],
                         [f"{g}/Mul_output_0"], name=f"{g}/Mul"),
        helper.make_node("MatMul", [f"{g}/Mul_output_0", f"{g}/Cast_output_0"],
                         [f"{g}/MatMul_output_0"], name=f"{g}/MatMul"),
        helper.make_node("MatMul", [f"{g}/MatMul_output_0", f"{g}/Mul_output_0"],
                         [f"{g}/MatMul_1_output_0"], name=f"{g}/MatMul_1"),
        helper.make_node("Einsum", [f"{g}/MatMul_1_output_0", "v"], ["y"],
                         name=f"{g}/Einsum_1", equation="b i j, b j k->b i k"),
    ]  # fmt: skip
    inits = {
        "topk_k": _i64(k),
        "last": np.array(-1, dtype=np.int64),  # a scalar (rank-0) index, as exported
        "column": _i64(-1, n, 1),
        "last_axis": _i64(-1),
    }
    inputs = {"x": [1, n, c], "v": [1, n, c]}
    return _model(nodes, inputs, {"y": [1, n, c]}, inits, "knn_adjacency")


def coordconv_boundary(points: int = 6, c: int = 4, size: int = 8) -> onnx.ModelProto:
    """STAR's CoordConvTh(with_boundary=True) in hgs.1-3: the last heatmap channel, clamped to
    [0, 1], gates the coordinate maps: where(b > 0.05, xx, 0), where(b > 0.05, yy, 0); the
    result is concatenated with the features and the plain coordinate maps and convolved
    (1x1). ORT 1.23 and 1.32 have no builder for Greater; 1.23 none for Where either."""
    rng = np.random.default_rng(4)
    a = "/hgs.1/coordconv/addcoords"
    ramp = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    xx = np.broadcast_to(ramp[:, None], (size, size))[None, None].copy()
    yy = np.broadcast_to(ramp[None, :], (size, size))[None, None].copy()
    rr = np.sqrt(xx**2 + yy**2)
    rr = (rr / rr.max()).astype(np.float32)
    nodes = [
        helper.make_node("Slice", ["heatmap", "starts", "ends", "axes", "steps"],
                         [f"{a}/Slice_output_0"], name=f"{a}/Slice"),
        helper.make_node("Clip", [f"{a}/Slice_output_0", "clip_min", "clip_max"],
                         [f"{a}/Clip_output_0"], name=f"{a}/Clip"),
        helper.make_node("Greater", [f"{a}/Clip_output_0", f"{a}/Constant_19_output_0"],
                         [f"{a}/Greater_output_0"], name=f"{a}/Greater"),
        helper.make_node("Where", [f"{a}/Greater_output_0", "xx", "zeros"],
                         [f"{a}/Where_output_0"], name=f"{a}/Where"),
        helper.make_node("Where", [f"{a}/Greater_output_0", "yy", "zeros"],
                         [f"{a}/Where_1_output_0"], name=f"{a}/Where_1"),
        helper.make_node("Concat", ["features", "xx", "yy", "rr", f"{a}/Where_output_0",
                                    f"{a}/Where_1_output_0"],
                         [f"{a}/Concat_4_output_0"], name=f"{a}/Concat_4", axis=1),
        helper.make_node("Conv", [f"{a}/Concat_4_output_0", "w", "b"], ["y"],
                         name="/hgs.1/coordconv/conv/Conv", dilations=[1, 1], group=1,
                         kernel_shape=[1, 1], pads=[0, 0, 0, 0], strides=[1, 1]),
    ]  # fmt: skip
    inits = {
        "starts": _i64(-1),
        "ends": _i64(INT64_MAX),
        "axes": _i64(1),
        "steps": _i64(1),
        "clip_min": np.array(0.0, dtype=np.float32),
        "clip_max": np.array(1.0, dtype=np.float32),
        f"{a}/Constant_19_output_0": np.array(0.05, dtype=np.float32),
        "xx": xx,
        "yy": yy,
        "rr": rr,
        "zeros": np.zeros((1, 1, size, size), np.float32),
        "w": _weights(rng, c, c + 5, 1, 1),
        "b": _weights(rng, c),
    }
    inputs = {"features": [1, c, size, size], "heatmap": [1, points, size, size]}
    return _model(nodes, inputs, {"y": [1, c, size, size]}, inits, "coordconv_boundary")


# Every pattern, by name, with the op the CoreML EP rejects in it.
PATTERNS: dict[str, tuple[Callable[[], onnx.ModelProto], str]] = {
    "flatten_after_global_pool": (flatten_after_global_pool, "Flatten"),
    "einsum_similarity": (einsum_similarity, "Einsum"),
    "einsum_aggregate": (einsum_aggregate, "Einsum"),
    "reduce_l2_normalize": (reduce_l2_normalize, "ReduceL2"),
    "expand_constant_shape": (expand_constant_shape, "Expand"),
    "batchnorm_rank3": (batchnorm_rank3, "BatchNormalization"),
    "batchnorm_rank2": (batchnorm_rank2, "BatchNormalization"),
    "pad_before_conv": (pad_before_conv, "Pad"),
    "knn_adjacency": (knn_adjacency, "TopK"),
    "coordconv_boundary": (coordconv_boundary, "Greater"),
}


def _shape(value_info: Any) -> tuple[int, ...]:
    return tuple(d.dim_value for d in value_info.type.tensor_type.shape.dim)


def input_cases(
    model: onnx.ModelProto, seed: int = 0
) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """(case name, feeds): random normal, zeros, negatives only, and ties.

    Ties: values drawn from {-1, 0, 1, 2}, so dot products and the heatmap gate's inputs repeat
    (TopK meets equal candidates; `>= threshold` selects more than K); for the STAR gate, the
    heatmap also holds the exact threshold 0.05.
    """
    rng = np.random.default_rng(seed)
    shapes = {i.name: _shape(i) for i in model.graph.input}
    yield "random", {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    yield "zeros", {k: np.zeros(s, np.float32) for k, s in shapes.items()}
    yield "negative", {k: -np.abs(rng.standard_normal(s)).astype(np.float32) - 0.1
                       for k, s in shapes.items()}  # fmt: skip
    ties = {k: rng.integers(-1, 3, s).astype(np.float32) for k, s in shapes.items()}
    if "heatmap" in ties:
        ties["heatmap"].reshape(-1)[::3] = np.float32(0.05)
    yield "ties", ties
