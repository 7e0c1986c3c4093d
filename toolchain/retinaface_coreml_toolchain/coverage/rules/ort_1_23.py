"""CoreML EP rules of ONNX Runtime 1.23.x: the 1.22 table plus the changes below."""

from __future__ import annotations

from dataclasses import replace

from retinaface_coreml_toolchain.coverage.graph import DYNAMIC, Node
from retinaface_coreml_toolchain.coverage.rules import ort_1_22
from retinaface_coreml_toolchain.coverage.rules.ort_1_22 import reject
from retinaface_coreml_toolchain.coverage.rules.table import Ctx, Rejection, fmt_shape

VERSION = "1.23"

# Base GetMaxSupportedOpSet 21 -> 23 (disassembly of 1.23.2, spec §2.2).
MAX_OPSET = 23

CONV_MEMORY_LIMIT = 16384

# Builder strings (BIN 1.23.2 vs 1.22.1; comments name the source file whose path precedes them).
MESSAGES = (
    ort_1_22.MESSAGES
    - {
        # base_op_builder.cc: the external-initializer check is gone (rejects_external_initializers)
        "Initializer [",
        "] has external initializers",
        "] with external data location are not currently supported",
        # gather_op_builder.cc
        "Failed to get input type",
        # softmax_op_builder.cc: no static, non-empty input needed any more (softmax below)
        "Empty input data is not supported.",
    }
) | {
    # conv_op_builder.cc: the shape checks of the 16384 limit (conv below)
    "Unable to get the shape of 'W' input, which is necessary to check for valid convolutions.",
    "Unable to get the shape of 'X' input, which is necessary to check for valid convolutions.",
    "Unable to get the shape of the output, which is necessary to check for valid convolutions.",
    # pad_op_builder.cc: constant_value must be float (pad() does not model it)
    "Only float constant_value is supported, got type: ",
    # softmax_op_builder.cc: rank known; static only below opset 13 (softmax below)
    "Softmax input [",
    "Softmax input must have shape information.",
    "Softmax input must have static shape for ONNX opset < 13",
    "] must have shape information.",
}


def conv(node: Node, ctx: Ctx) -> Rejection | None:
    """1.23 adds: W, X and output shapes known, and no dim above 16384 (dynamic dims pass).

    The 16384 limit moved from the generic input check into Conv (PR #24594; BIN 1.23.2).
    """
    found = ort_1_22.conv(node, ctx)
    if found is not None:
        return found
    for name, what in ((node.inputs[1], "W"), (node.inputs[0], "X"), (node.outputs[0], "output")):
        shape = ctx.shape(name)
        if shape is None:
            return reject("no-shape", f"the shape of '{what}' ({name}) is unknown")
        if any(d > CONV_MEMORY_LIMIT for d in shape if d != DYNAMIC):
            return reject(
                "dim-limit",
                f"{what} shape {fmt_shape(shape)} exceeds CoreML's convolution limit of 16384",
            )
    return None


def softmax(node: Node, ctx: Ctx) -> Rejection | None:
    """1.23: rank must be known; a static shape only for since-version < 13 (BIN 1.23.2)."""
    data = node.inputs[0]
    shape = ctx.shape(data)
    if shape is None:
        return reject("no-shape", f"Softmax input '{data}' has no shape information")
    if node.since_version < 13 and DYNAMIC in shape:
        return reject(
            "dynamic-shape",
            f"Softmax-{node.since_version} (opset < 13) needs a static input; '{data}' is "
            f"{fmt_shape(shape)} (fix the input shape, or export with opset >= 13)",
        )
    return None


TABLE = replace(
    ort_1_22.TABLE,
    version=VERSION,
    max_opset=MAX_OPSET,
    # Generic "input dim > 16384" check removed (moved into Conv above; BIN 1.22.1 vs 1.23.2).
    max_input_dim=None,
    # "Initializer ... with external data location" check removed (BIN 1.22.1 vs 1.23.2).
    rejects_external_initializers=False,
    impl={**ort_1_22.IMPL, "conv": conv, "softmax": softmax},
    messages=MESSAGES,
)
