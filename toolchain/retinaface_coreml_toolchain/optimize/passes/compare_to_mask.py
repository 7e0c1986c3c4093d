"""Greater / GreaterOrEqual / Less / LessOrEqual feeding a float Cast or a Where -> float masks.

Rejected: the CoreML EP has no builder for any compare op (absent from ``BUILDERS`` in
``toolchain/coverage/rules/ort_1_22.py``; 1.23 and 1.32 add none), so each fails with "no
builder"; under 1.23 the Where after it has no builder either (1.32 adds one,
``ort_1_32.NEW_BUILDERS``), and a bool Cast input is 1.32-only (``ort_1_32.cast_input_type``).
STAR's ``torch.where(heatmap > 0.05, coords, 0)`` exports Greater -> Where.

The rewrite: ``[a > b]`` is ``positive_step(a - b)`` (Sub, then Mul and Clip only: see
``common.positive_step``); ``[a >= b]`` is ``1 - [b > a]``, ``[a < b]`` is
``[b > a]``, ``[a <= b]`` is ``1 - [a > b]``. A float ``Cast`` of the bool becomes that mask;
``Where(c, x, y)`` becomes ``x*m + y*(1-m)``, or ``x*m`` when y is a constant of zeros.

Equal: exact for finite inputs. With IEEE float32 and subnormals, ``a - b`` is 0 only when
``a == b`` and keeps the sign of ``a - b`` otherwise (rounding is monotonic), and
``positive_step`` maps every positive float32 to 1 and the rest to 0, ties to 0, with no
choice left to the hardware; 1 - m, x*1 and x*0 + y are exact for m in {0, 1} and finite x,
y. Not equal where a or b is NaN or both are the same infinity, or on hardware that flushes
subnormals (differences below 1.2e-38 then compare as ties). On a float16 compute unit the
mask is exactly the comparison of the float16 values it is given (two rounds already reach
float16's smallest subnormal); values equal only after rounding to float16 then tie.
"""

from __future__ import annotations

import numpy as np
from onnxscript.rewriter import RewriteRule

from retinaface_coreml_toolchain.optimize.passes.common import (
    FLOAT,
    MIN_OPSET,
    Pass,
    constant,
    default_opset,
    is_float,
    positive_step,
    static_shape,
)

# op type -> (swap the operands, take 1 - step): [a OP b] in terms of step(x - y) = [x > y].
FORMS = {
    "Greater": (False, False),
    "Less": (True, False),
    "GreaterOrEqual": (True, True),
    "LessOrEqual": (False, True),
}


def diff_shape(a, b) -> tuple[int, ...] | None:
    shapes = static_shape(a), static_shape(b)
    if None in shapes:
        return None
    return tuple(int(d) for d in np.broadcast_shapes(*shapes))


def mask(op, op_type: str, a, b):
    """float32 1.0 where ``a op_type b`` holds, else 0.0."""
    swap, negate = FORMS[op_type]
    x, y = (b, a) if swap else (a, b)
    step = positive_step(op, op.Sub(x, y))
    return op.Sub(constant(op, np.ones((), dtype=np.float32)), step) if negate else step


def comparable(context, a, b) -> bool:
    shape = diff_shape(a, b)
    return (
        is_float(a)
        and is_float(b)
        and shape is not None
        and len(shape) <= 5
        and default_opset(context) >= MIN_OPSET
    )


def _is_zeros(value) -> bool:
    const = value.const_value
    return const is not None and not np.any(const.numpy())


def _compare(cond):
    """The compare node producing ``cond`` when it is one of FORMS on float inputs, else None."""
    node = cond.producer()
    if node is None or node.op_type not in FORMS or node.domain not in ("", "ai.onnx"):
        return None
    return node


def _comparable_cond(context, cond) -> bool:
    node = _compare(cond)
    return node is not None and comparable(context, *node.inputs)


def _mask_of(op, cond):
    node = _compare(cond)
    return mask(op, node.op_type, *node.inputs)


# The compare itself stays matched by its consumers, so a compare feeding two Wheres (STAR)
# is rewritten at each; the driver's CSE merges the duplicate masks, DCE drops the compare.
def _cast_target(op, cond):
    return op.Cast(cond, _allow_other_attributes=True, _outputs=["out"])


def _cast_condition(context, cond, out, **_) -> bool:
    return _comparable_cond(context, cond) and out.producer().attributes.get_int("to", 0) == FLOAT


def _cast_replacement(op, cond, out, **_):
    return _mask_of(op, cond)


def _where_target(op, cond, x, y):
    return op.Where(cond, x, y)


def _where_condition(context, cond, x, y, **_) -> bool:
    return _comparable_cond(context, cond) and is_float(x) and is_float(y)


def _where_replacement(op, cond, x, y, **_):
    m = _mask_of(op, cond)
    if _is_zeros(y):
        return op.Mul(x, m)
    one = constant(op, np.ones((), dtype=np.float32))
    return op.Add(op.Mul(x, m), op.Mul(y, op.Sub(one, m)))


PASS = Pass(
    name="compare_to_mask",
    summary="Greater/Less(+OrEqual) -> Cast or Where becomes an exact float mask (Mul/Clip)",
    rules=(
        RewriteRule(_cast_target, _cast_replacement, _cast_condition, name="compare_cast"),
        RewriteRule(_where_target, _where_replacement, _where_condition, name="compare_where"),
    ),
)
