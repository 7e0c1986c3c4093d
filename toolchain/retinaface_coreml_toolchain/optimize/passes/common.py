"""What every pass shares: the Pass record and the few graph facts the conditions read."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import RewriteRule

FLOAT = ir.DataType.FLOAT

# The passes build opset-13+ forms (axes of ReduceSum/Unsqueeze as inputs).
MIN_OPSET = 13


@dataclass(frozen=True, kw_only=True)
class Pass:
    """One rewrite: a name for the report, a one-line summary, and its onnxscript rules."""

    name: str
    summary: str
    rules: tuple[RewriteRule, ...]


def static_shape(value: ir.Value | None) -> tuple[int, ...] | None:
    """The value's shape when every dim is a known int, else None."""
    if value is None or value.shape is None or not value.shape.is_static():
        return None
    return tuple(int(d) for d in value.shape)


def is_float(value: ir.Value | None) -> bool:
    return value is not None and value.dtype == FLOAT


def default_opset(context) -> int:
    """The model's ai.onnx opset, from an onnxscript MatchContext."""
    return int(context.model.opset_imports.get("", 0))


def constant(op, array: np.ndarray) -> ir.Value:
    """A Constant node holding ``array`` (lifted to an initializer after the pass)."""
    return op.Constant(value=ir.tensor(np.ascontiguousarray(array)))


def int64s(op, values: list[int]) -> ir.Value:
    return constant(op, np.asarray(values, dtype=np.int64))


# positive_step scales by 2**15 per round: the largest power of two float16 holds, so the
# constants survive a CoreML float16 compile; 10 rounds reach 2**150, past float32's smallest
# subnormal (2**-149).
STEP_SCALE = np.float32(2.0**15)
STEP_ROUNDS = 10


def positive_step(op, diff: ir.Value) -> ir.Value:
    """float32 ``1.0`` where ``diff > 0``, else ``0.0``, with Mul and Clip only.

    ``Clip(diff * 2**15, 0, 1)``, ten times over: 0 and negatives give 0 at once; a positive
    value is scaled exactly (a power of two) until it reaches 1, and every positive float32,
    the smallest subnormal included, does within ten rounds; overflow to +inf clips to 1. The
    Clip between the Muls keeps a compiler from folding the constants into one that overflows
    (0 x inf would be NaN). No ArgMax: CoreML leaves its choice among ties unspecified
    (coremltools' ``reduce_argmax``), and a mask must not depend on it. NaN stays NaN.
    """
    scale = constant(op, np.asarray(STEP_SCALE))
    low = constant(op, np.zeros((), dtype=np.float32))
    high = constant(op, np.ones((), dtype=np.float32))
    value = diff
    for _ in range(STEP_ROUNDS):
        value = op.Clip(op.Mul(value, scale), low, high)
    return value
