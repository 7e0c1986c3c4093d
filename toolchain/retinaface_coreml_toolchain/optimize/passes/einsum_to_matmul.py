"""Einsum of the batched-matmul form (``bij,bjk->bik`` and its transposed variants) -> MatMul.

Rejected: the CoreML EP has no builder for Einsum (absent from ``BUILDERS`` in
``toolchain/coverage/rules/ort_1_22.py``; 1.23 and 1.32 add none), so it fails the first
check, "no builder". MatMul passes ``ort_1_22.gemm`` in MLProgram (both inputs of rank >= 2).

Handled: two operands, no ellipsis or repeated label in one operand; the labels split into
batch labels (in both operands and the output), one contracted label (in both operands, not
the output) and at most one free label per operand (in that operand and the output). Each
operand is transposed to ``batch, free, contracted`` / ``batch, contracted, free``, multiplied,
and the product is transposed to the output's order; identity transposes are left out.

Equal: the same products summed over the same axis, so equal up to float32 summation order:
|diff| <= K * 2**-23 * sum_k |a_ik * b_kj| for a contraction of length K (far below the
1e-4 x max|output| the driver checks).
"""

from __future__ import annotations

from dataclasses import dataclass

from onnxscript.rewriter import RewriteRule

from retinaface_coreml_toolchain.optimize.passes.common import Pass, is_float, static_shape


@dataclass(frozen=True, kw_only=True)
class _Plan:
    perm_a: tuple[int, ...]
    perm_b: tuple[int, ...]
    perm_out: tuple[int, ...]


def plan(equation: str) -> _Plan | None:
    """The transposes around one MatMul that compute ``equation``, or None if not that form.

    e.g. ``"bij,bkj->bik"``: a as is, b transposed to ``bjk``, product ``bik`` as is.
    """
    eq = equation.replace(" ", "")
    if "..." in eq or "->" not in eq:
        return None
    lhs, out = eq.split("->")
    operands = lhs.split(",")
    if len(operands) != 2:
        return None
    a, b = operands
    if any(len(set(s)) != len(s) for s in (a, b, out)) or set(out) - set(a + b):
        return None
    batch = [c for c in out if c in a and c in b]
    contracted = [c for c in a if c in b and c not in out]
    free_a = [c for c in a if c not in b]
    free_b = [c for c in b if c not in a]
    if len(contracted) != 1 or len(free_a) > 1 or len(free_b) > 1:
        return None
    if set(free_a + free_b) - set(out) or len(out) != len(batch) + len(free_a) + len(free_b):
        return None
    order_a = batch + free_a + contracted
    order_b = batch + contracted + free_b
    product = batch + free_a + free_b
    if not free_a or not free_b:
        return None  # a matrix-vector form: MatMul would need a 1-D operand (rejected too)
    return _Plan(
        perm_a=tuple(a.index(c) for c in order_a),
        perm_b=tuple(b.index(c) for c in order_b),
        perm_out=tuple(product.index(c) for c in out),
    )


def _target(op, a, b):
    return op.Einsum(a, b, _allow_other_attributes=True, _outputs=["out"])


def _equation(out) -> str:
    return out.producer().attributes.get_string("equation", "")


def _condition(context, a, b, out, **_) -> bool:
    shapes = static_shape(a), static_shape(b)
    return (
        is_float(a)
        and is_float(b)
        and None not in shapes
        and plan(_equation(out)) is not None
        and len(shapes[0]) >= 2
    )


def _transposed(op, value, perm: tuple[int, ...]):
    return value if perm == tuple(range(len(perm))) else op.Transpose(value, perm=list(perm))


def _replacement(op, a, b, out, **_):
    p = plan(_equation(out))
    product = op.MatMul(_transposed(op, a, p.perm_a), _transposed(op, b, p.perm_b))
    return _transposed(op, product, p.perm_out)


PASS = Pass(
    name="einsum_to_matmul",
    summary="Einsum in a batched-matmul form -> Transpose/MatMul (no Einsum builder)",
    rules=(RewriteRule(_target, _replacement, _condition, name="einsum_to_matmul"),),
)
