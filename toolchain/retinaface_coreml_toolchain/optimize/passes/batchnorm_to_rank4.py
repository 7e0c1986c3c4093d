"""BatchNormalization of a rank-2 or rank-3 input -> Reshape to rank 4, the same BN, Reshape back.

Rejected: ``ort_1_22.batchnorm`` (in ``toolchain/coverage/rules/ort_1_22.py``, unchanged in
1.23 and 1.32) takes only a 4-D input: "BatchNormalization input must be 4-D". BatchNorm1d in
PyTorch exports [N, C] and [N, C, L] inputs. The rewrite feeds the same BN [N, C, L, 1]
(or [N, C, 1, 1]), which passes, as do the two Reshapes (constant shapes, static data).

Equal: exact. BN normalises each channel with the same four constants whatever the trailing
spatial dims are; adding a trailing 1 moves no value, and the Reshapes only relabel the shape.
Only inference-mode BN (one output) with constant scale, bias, mean and var is rewritten.
"""

from __future__ import annotations

from onnxscript.rewriter import RewriteRule

from retinaface_coreml_toolchain.optimize.passes.common import Pass, int64s, static_shape


def _target(op, x, scale, bias, mean, var):
    return op.BatchNormalization(
        x, scale, bias, mean, var, _allow_other_attributes=True, _outputs=["out"]
    )


def _condition(context, x, scale, bias, mean, var, out, **_) -> bool:
    shape = static_shape(x)
    constants = all(v.const_value is not None for v in (scale, bias, mean, var))
    inference = out.producer().attributes.get_int("training_mode", 0) == 0
    return shape is not None and len(shape) in (2, 3) and constants and inference


def _replacement(op, x, scale, bias, mean, var, out, **_):
    shape = static_shape(x)
    attrs = {
        name: attr.value
        for name, attr in out.producer().attributes.items()
        if name in ("epsilon", "momentum")
    }
    rank4 = op.Reshape(x, int64s(op, [*shape, *([1] * (4 - len(shape)))]))
    normed = op.BatchNormalization(rank4, scale, bias, mean, var, **attrs)
    return op.Reshape(normed, int64s(op, list(shape)))


PASS = Pass(
    name="batchnorm_to_rank4",
    summary="BatchNormalization of rank 2/3 -> Reshape to 4-D, BN, Reshape back",
    rules=(RewriteRule(_target, _replacement, _condition, name="batchnorm_to_rank4"),),
)
