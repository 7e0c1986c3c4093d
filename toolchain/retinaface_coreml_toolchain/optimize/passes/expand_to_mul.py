"""Expand with a constant shape -> Mul by a constant tensor of ones of that shape.

Rejected: the CoreML EP has no builder for Expand (absent from ``BUILDERS`` in
``toolchain/coverage/rules/ort_1_22.py``; 1.32 adds Tile but not Expand), so it fails with "no
builder". PyTorch's ``F.normalize`` exports ``x / norm.clamp_min(eps).expand_as(x)`` with one.
Mul (binary family, float input 0) is taken in both formats.

Equal: exact. Expand's output is x broadcast bidirectionally against the shape, which is
what Mul broadcasts to as well; multiplying by 1.0 leaves every float32 value unchanged (NaN
and infinities included).
"""

from __future__ import annotations

import numpy as np
from onnxscript.rewriter import RewriteRule

from retinaface_coreml_toolchain.optimize.passes.common import Pass, constant, is_float


def _target(op, x, shape):
    return op.Expand(x, shape)


def _condition(context, x, shape, **_) -> bool:
    value = shape.const_value
    return is_float(x) and value is not None and all(int(d) >= 1 for d in value.numpy())


def _replacement(op, x, shape, **_):
    dims = [int(d) for d in shape.const_value.numpy()]
    return op.Mul(x, constant(op, np.ones(dims, dtype=np.float32)))


PASS = Pass(
    name="expand_to_mul",
    summary="Expand to a constant shape -> Mul by ones of that shape (no Expand builder)",
    rules=(RewriteRule(_target, _replacement, _condition, name="expand_to_mul"),),
)
