"""CoreML EP rules of ONNX Runtime 1.24.x: the 1.23 table plus the changes below.

Between 1.23.2 and 1.24.4 the EP's string tables are identical apart from Softplus and the
default max opset (spec §0), so this delta is small.
"""

from __future__ import annotations

from dataclasses import replace

from retinaface_coreml_toolchain.coverage.rules import ort_1_23

VERSION = "1.24"

# Base GetMaxSupportedOpSet 23 -> 25 (disassembly of 1.24.4, spec §2.2).
MAX_OPSET = 25

# Builder strings (BIN 1.24.4 vs 1.23.2): the opset message gained a space after the op type.
MESSAGES = (ort_1_23.MESSAGES - {"is only supported for opset ["}) | {
    " is only supported for opset ["
}

# New op types in the 1.24 md list (coreml_supported_mlprogram_ops.md, shipped in the wheel):
# Softplus (a new Activation string, BIN 1.24.4), Elu, Exp. The md lists them for MLProgram only,
# so NeuralNetwork is modelled as rejected. Builder family for Elu/Exp is UNVERIFIED (spec §3.1);
# it only matters for their opset minimum, modelled as 1.
NEW_BUILDERS = {"Softplus": "activation", "Elu": "activation", "Exp": "unary"}

TABLE = replace(
    ort_1_23.TABLE,
    version=VERSION,
    max_opset=MAX_OPSET,
    builders={**ort_1_23.TABLE.builders, **NEW_BUILDERS},
    nn_unsupported=ort_1_23.TABLE.nn_unsupported | set(NEW_BUILDERS),
    # "Activation 6 (1.24+: op-dependent)" (spec §3.1): the new activations take min opset 1.
    min_opset={**ort_1_23.TABLE.min_opset, "Softplus": 1, "Elu": 1},
    messages=MESSAGES,
)
