"""CoreML EP rules of ONNX Runtime 1.32.x: the 1.24 table plus the changes below.

1.25-1.31 are not modelled separately: the first release holding each 1.32 change (PR #28293's
trivial-group drop, scalar-index Gather, MLProgram Pad) is UNVERIFIED (spec §11), so those
releases resolve to the 1.24 table.
"""

from __future__ import annotations

from dataclasses import replace

from retinaface_coreml_toolchain.coverage.graph import DYNAMIC, Node
from retinaface_coreml_toolchain.coverage.rules import ort_1_22, ort_1_24
from retinaface_coreml_toolchain.coverage.rules.ort_1_22 import reject
from retinaface_coreml_toolchain.coverage.rules.table import (
    BOOL,
    FLOAT,
    FLOAT16,
    INT32,
    INT64,
    Ctx,
    Rejection,
    dtype_name,
    fmt_shape,
)

VERSION = "1.32"

# Base GetMaxSupportedOpSet 25 -> 28 (disassembly of 1.32.0, spec §2.2).
MAX_OPSET = 28

# Builder strings (BIN 1.32.0 vs 1.24.4; comments name the source file whose path precedes them,
# so a string used first in a shared header is listed under that header).
MESSAGES = (
    ort_1_24.MESSAGES
    - {
        # gather_op_builder.cc: scalar indices are accepted now (gather below)
        "Gather does not support scalar 'indices'",
        # pad_op_builder.cc: reworded per format for MLProgram Pad (pad below)
        "CoreML only supports padding on last two dimensions.",
        "Only `constant` mode Pad is currently supported for now, mode: ",
        "Only float constant_value is supported, got type: ",
        "Pad requires input shape to be at least 2d, input is ",
        "`constant_value` input is required for constant mode Pad op.",
        # reshape_helper.h
        "input_shape_size == size",
    }
) | {
    # activation_op_builder.cc
    "HardSigmoid input data type [",
    "] is not supported by CoreML (float or float16 only)",
    # builder_utils.cc
    "Unsupported data type: ",
    # conv_op_builder.cc
    " activation_params, got ",
    "' expects ",
    "All dilation values must be positive, got: ",
    "All stride values must be positive, got: ",
    "Failed to get FusedConv output shape",
    "FusedConv activation '",
    "FusedConv activation [",
    "FusedConv element type [",
    "FusedConv has unsupported activation: ",
    "FusedConv is only supported in MLProgram format",
    "FusedConv with the optional 'Z' (residual sum) input is not supported by the CoreML EP",
    "] expects ",
    "] is not supported by the CoreML EP",
    "] is not supported by the CoreML EP (expected FLOAT or FLOAT16)",
    # gather_nd_op_builder.cc
    " exceeds data rank ",
    "GatherND is only supported for the ML Program format.",
    "GatherND only supports batch_dims == 0. Got: ",
    "GatherND: 'data' input type not supported. Got type: ",
    "GatherND: 'indices' input must be int32 or int64. Got type: ",
    "GatherND: 'indices' must be a constant initializer for the CoreML EP.",
    "GatherND: data or indices shape is unknown.",
    "GatherND: failed to get data/indices shape",
    "GatherND: index tuple depth ",
    "GatherND: indexed data dims must be static.",
    # gather_op_builder.cc
    "Failed to get 'indices' dtype",
    "Gather 'indices' dtype [",
    "Gather with scalar 'indices' requires static 'data' shape",
    "Gather with scalar 'indices' supports 'data' rank up to 4",
    "] is not supported (expected INT32 or INT64)",
    # gridsample_op_builder.cc
    "LogicalOpBuilder::AddToModelBuilderImpl, unexpected op: ",
    # logical_op_builder.cc
    " is only supported for the ML Program format.",
    ": both inputs must be bool. Got types: ",
    # pad_op_builder.cc
    " but pad amounts are [",
    " has size ",
    "For ML Program, only `constant` and `reflect` modes are supported, mode: ",
    "NeuralNetwork Pad requires input shape to be at least 2d, input is ",
    "Only `constant` mode Pad is supported for NeuralNetwork, mode: ",
    "Only float constant_value is supported for NeuralNetwork, got type: ",
    "Only padding on the last two dimensions is supported for ",
    "Pad requires input to have a shape.",
    "Reflect pad amount must be less than dimension size. ",
    "`constant_value` input is required for constant mode Pad op in NeuralNetwork mode.",
    # quick_gelu_op_builder.cc
    "Failed to get QuickGelu input shape",
    "QuickGelu is only supported by the CoreML EP in MLProgram format",
    "QuickGelu: failed to get input shape",
    "QuickGelu: only MLProgram format is supported by the CoreML EP",
    # repeated_field.h
    "Input too large",
    "old_size <= std::numeric_limits<int>::max() - delta",
    # reshape_helper.h
    "(input_shape_non_zero_size % size_for_inference) == 0",
    "The input shape has too many elements. Input shape:",
    "The requested shape has too many elements. Input shape:",
    "input_shape_size == 0",
    "input_shape_size == requested_shape_size",
    "size_for_inference != 0",
    # split_op_builder.cc
    " not divisible by num outputs ",
    "Dim at the splitting axis is not allowed to be dynamic when 'split' is omitted.",
    "Even split required when 'split' is omitted; axis size ",
    "Invalid value in 'split' attribute (sizes must be positive).",
    "Mismatch between sum of 'split' attribute and split-axis size. Expected: ",
    # tensor.h
    " was false.",
    "Tensor type mismatch. ",
    "distance <= static_cast<size_t>(std::numeric_limits<int>::max())",
    # tile_op_builder.cc
    " is not supported",
    ") must match input rank (",
    "Tile 'repeats' length (",
    "Tile 'repeats' values must be positive; got ",
    "Tile NeuralNetwork path requires 'repeats' to be a constant initializer",
    "Tile does not support input rank greater than 5. Input rank: ",
    "[Tile] input type ",
    # unsqueeze.h
    "TileOpBuilder NeuralNetwork path requires constant 'repeats'",
    # where_op_builder.cc
    "Where is only supported for the ML Program format.",
    "Where: 'X' and 'Y' inputs must both be float or float16. Got types: ",
    "Where: 'condition' input must be bool. Got type: ",
}

# New builder classes in 1.32.0: GatherND, Identity, Logical, QuickGelu, Tile, Where (BIN symbol
# tables); new op strings Cos, Sin, Ceil, HardSigmoid, com.microsoft FusedConv (md list of the
# 1.32.0 wheel). The NeuralNetwork md list names none of them: modelled as MLProgram only.
NEW_BUILDERS = {
    "GatherND": "gathernd",
    "Identity": "identity",
    "And": "logical",
    "QuickGelu": "quickgelu",
    "Tile": "tile",
    "Where": "where",
    "Cos": "unary",
    "Sin": "unary",
    "Ceil": "unary",
    "HardSigmoid": "activation",
    "FusedConv": "conv",
}

# SupportsMLProgram() turned true for these families (BIN 1.32.0), Pad among them.
NEW_MLPROGRAM = {"gathernd", "identity", "logical", "pad", "quickgelu", "tile", "where"}

# Builders reporting IsTrivial() in 1.32.0 (BIN 1.32.0 overrides; PR #28293). Unary is trivial
# only for Ceil. Shape, Gather, Concat and Slice are not trivial.
TRIVIAL = frozenset(
    {"Cast", "Flatten", "Identity", "Reshape", "Squeeze", "Unsqueeze", "Tile", "Transpose", "Ceil"}
)


def gather(node: Node, ctx: Ctx) -> Rejection | None:
    """1.32 takes scalar indices when the data shape is static and data rank <= 4.

    Settled from source (onnxruntime/core/providers/coreml/builders/impl/gather_op_builder.cc,
    1.32 form, index id 56141636517): IsOpSupportedImpl checks, in order, data and indices
    shapes known, indices int32/int64, then for rank-0 indices a static data shape ("Gather with
    scalar 'indices' requires static 'data' shape") and data rank <= 4, then output rank <= 5.
    """
    data, indices = node.inputs[0], node.inputs[1]
    data_shape, idx_shape = ctx.shape(data), ctx.shape(indices)
    if data_shape is None:
        return reject("no-shape", f"the data '{data}' has no shape information")
    if idx_shape is None:
        return reject("no-shape", f"the indices '{indices}' have no shape information")
    if ctx.dtype(indices) not in (INT32, INT64):
        return reject("input-type", f"indices are {dtype_name(ctx.dtype(indices))}")
    if len(idx_shape) == 0:
        if DYNAMIC in data_shape:
            return reject(
                "scalar-indices",
                f"scalar 'indices' need a static data shape; '{data}' is {fmt_shape(data_shape)} "
                "(fix the input shape so this shape arithmetic folds)",
            )
        if len(data_shape) > 4:
            return reject("rank", "scalar 'indices' with data of rank > 4")
    if len(data_shape) + len(idx_shape) - 1 > 5:
        return reject("rank", "Gather output rank would exceed 5")
    return None


def pad(node: Node, ctx: Ctx) -> Rejection | None:
    """1.32: MLProgram Pad also takes 'reflect' mode (BIN 1.32.0 strings; ISSUE #28022)."""
    modes = ("constant", "reflect") if ctx.mlprogram else ("constant",)
    return ort_1_22.pad(node, ctx, modes=modes)


def cast_input_type(node: Node, ctx: Ctx) -> Rejection | None:
    """1.32 adds bool to MLProgram Cast (PR #28595)."""
    if ctx.mlprogram and ctx.dtype(node.inputs[0]) == BOOL:
        return None
    return ort_1_22.cast_input_type(node, ctx)


def cast(node: Node, ctx: Ctx) -> Rejection | None:
    """1.32 adds bool as a MLProgram Cast target (PR #28595)."""
    if ctx.mlprogram and int(node.attrs.get("to", 0)) == BOOL:
        if ctx.graph.producer(node.inputs[0]) is None:
            return reject("inputs", "Cast fed directly by a graph input or initializer")
        return None
    return ort_1_22.cast(node, ctx)


def logical_input_type(node: Node, ctx: Ctx) -> Rejection | None:
    """And: both inputs bool (md note of the 1.32.0 wheel)."""
    if all(ctx.dtype(name) == BOOL for name in node.inputs):
        return None
    return reject("input-type", "And needs bool inputs")


def where_input_type(node: Node, ctx: Ctx) -> Rejection | None:
    """Where: the X/Y branches float32 or float16 (md note of the 1.32.0 wheel)."""
    if all(ctx.dtype(name) in (FLOAT, FLOAT16) for name in node.inputs[1:]):
        return None
    return reject("input-type", "Where's X and Y must be float32 or float16")


def gathernd(node: Node, ctx: Ctx) -> Rejection | None:
    if int(node.attrs.get("batch_dims", 0)) != 0:
        return reject("attribute", "GatherND batch_dims must be 0")
    return None


def tile(node: Node, ctx: Ctx) -> Rejection | None:
    shape = ctx.shape(node.inputs[0])
    if shape is None or len(shape) > 5:
        return reject("rank", f"Tile input rank up to 5; got {fmt_shape(shape)}")
    return None


TABLE = replace(
    ort_1_24.TABLE,
    version=VERSION,
    max_opset=MAX_OPSET,
    builders={**ort_1_24.TABLE.builders, **NEW_BUILDERS},
    mlprogram=ort_1_24.TABLE.mlprogram | NEW_MLPROGRAM,
    nn_unsupported=ort_1_24.TABLE.nn_unsupported | set(NEW_BUILDERS),
    # Split's GetMinSupportedOpSet 13 -> 1 (disassembly of 1.32.0, spec §3.1).
    min_opset={**ort_1_24.TABLE.min_opset, "Split": 1},
    input_types={
        **ort_1_24.TABLE.input_types,
        "cast": cast_input_type,
        "logical": logical_input_type,
        "where": where_input_type,
    },
    impl={
        **ort_1_24.TABLE.impl,
        "gather": gather,
        "pad": pad,
        "cast": cast,
        "gathernd": gathernd,
        "tile": tile,
    },
    trivial=TRIVIAL,
    # GetCapability passes an on-group-closed filter that drops a group whose builders are all
    # trivial (disassembly of the 1.32.0 lambda; PR #28293).
    drop_trivial_groups=True,
    messages=MESSAGES,
)
