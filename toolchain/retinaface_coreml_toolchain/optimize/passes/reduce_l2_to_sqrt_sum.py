"""ReduceL2 -> Sqrt(ReduceSum(x * x)) over the same axes, with the same keepdims.

Rejected: the CoreML EP has no builder for ReduceL2 (the reduction family in ``BUILDERS`` of
``toolchain/coverage/rules/ort_1_22.py`` is ReduceMean/Min/Max/Prod/Sum only; unchanged in 1.23
and 1.32), so it fails with "no builder". Mul, ReduceSum with constant axes
(``ort_1_22.reduction``) and Sqrt (unary family) are all taken in MLProgram.

Equal: ReduceL2 is defined as sqrt(sum(x**2)); the rewrite computes exactly that, so results
agree up to float32 summation order (|diff| <= n * 2**-24 * the norm, n elements reduced).
Overflow is the same in both: x*x is float32 in the original too.
"""

from __future__ import annotations

from onnxscript.rewriter import RewriteRule

from retinaface_coreml_toolchain.optimize.passes.common import (
    MIN_OPSET,
    Pass,
    default_opset,
    int64s,
    is_float,
)


def _target(op, x):
    return op.ReduceL2(x, _allow_other_attributes=True, _outputs=["out"])


def _condition(context, x, out, **_) -> bool:
    node = out.producer()
    # ReduceL2-18 takes axes as an input; only the attribute form (opset 13-17) is handled.
    return is_float(x) and len(node.inputs) == 1 and default_opset(context) >= MIN_OPSET


def _replacement(op, x, out, **_):
    attrs = out.producer().attributes
    axes = attrs.get_ints("axes", None)
    keepdims = attrs.get_int("keepdims", 1)
    squares = op.Mul(x, x)
    if axes is None:  # reduce over every axis, as ReduceL2 without axes does
        total = op.ReduceSum(squares, keepdims=keepdims)
    else:
        total = op.ReduceSum(squares, int64s(op, list(axes)), keepdims=keepdims)
    return op.Sqrt(total)


PASS = Pass(
    name="reduce_l2_to_sqrt_sum",
    summary="ReduceL2 -> Sqrt(ReduceSum(x*x)) (no ReduceL2 builder)",
    rules=(RewriteRule(_target, _replacement, _condition, name="reduce_l2_to_sqrt_sum"),),
)
