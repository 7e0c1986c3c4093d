"""Flatten -> Reshape with the constant 2-D shape it implies.

Rejected: the Flatten builder is NeuralNetwork-only; it is missing from ``MLPROGRAM`` in
``toolchain/coverage/rules/ort_1_22.py`` (kept by 1.23 and 1.32), so the support check stops at
"Flatten is not supported in MLProgram format". Reshape with a constant shape and static data
passes ``ort_1_22.reshape``.

Equal: exact. Flatten(axis) of a static [d0..dn) is by definition Reshape to
[d0*..*d(axis-1), d(axis)*..*dn); no arithmetic is done on the values.
"""

from __future__ import annotations

import math

from onnxscript.rewriter import RewriteRule

from retinaface_coreml_toolchain.optimize.passes.common import Pass, int64s, static_shape


def _target(op, x):
    return op.Flatten(x, _allow_other_attributes=True, _outputs=["out"])


def _axis(out) -> int:
    return out.producer().attributes.get_int("axis", 1)


def _condition(context, x, out, **_) -> bool:
    return static_shape(x) is not None


def _replacement(op, x, out, **_):
    shape = static_shape(x)
    axis = _axis(out) + len(shape) if _axis(out) < 0 else _axis(out)
    return op.Reshape(x, int64s(op, [math.prod(shape[:axis]), math.prod(shape[axis:])]))


PASS = Pass(
    name="flatten_to_reshape",
    summary="Flatten -> Reshape to its constant 2-D shape (Flatten is NeuralNetwork-only)",
    rules=(RewriteRule(_target, _replacement, _condition, name="flatten_to_reshape"),),
)
