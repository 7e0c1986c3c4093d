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


def positive_step(op, diff: ir.Value, shape: tuple[int, ...]) -> ir.Value:
    """float32 ``1.0`` where ``diff > 0``, else ``0.0``, with ops the CoreML EP takes.

    ArgMax over ``[0, diff]`` stacked on a new last axis returns the first largest index: 1
    only when ``diff`` is strictly greater than 0 (a tie with 0, ``-0.0`` included, returns 0).
    ``Cast`` of that int64 to float32 is exact. Needs ``len(shape) <= 4`` (CoreML's rank 5).
    """
    zeros = constant(op, np.zeros((*shape, 1), dtype=np.float32))
    stacked = op.Concat(zeros, op.Unsqueeze(diff, int64s(op, [-1])), axis=-1)
    index = op.ArgMax(stacked, axis=-1, keepdims=0, select_last_index=0)
    return op.Cast(index, to=FLOAT)
