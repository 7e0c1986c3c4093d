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
)
