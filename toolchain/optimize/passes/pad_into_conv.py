"""Pad (constant 0, spatial dims only) followed by Conv -> the Conv alone, with larger pads.

Rejected: the Pad builder is NeuralNetwork-only before ORT 1.32 (not in ``MLPROGRAM`` of
``toolchain/coverage/rules/ort_1_22.py`` and ``ort_1_23.py``: "Pad is not supported in
MLProgram format"); 1.32 takes it (``NEW_MLPROGRAM`` in ``ort_1_32.py``), where the pass only
saves a node. The Conv with explicit pads passes ``ort_1_23.conv``.

Equal: exact. A Conv with pads p reads zeros outside the input; zero-padding first and then
convolving with pads 0 computes the same sums of the same products in the same order.
Only a Pad with mode constant, value 0 (or absent), non-negative constant pads on the spatial
axes, no axes input, feeding only the Conv's X, and a Conv without auto_pad is rewritten.
"""

from __future__ import annotations

from onnxscript.rewriter import RewriteRule

from toolchain.optimize.passes.common import Pass, static_shape


def _target(op, x, pads):
    padded = op.Pad(x, pads, _allow_other_inputs=True, _allow_other_attributes=True)
    return op.Conv(padded, _allow_other_inputs=True, _allow_other_attributes=True, _outputs=["out"])


def _pad_node(out):
    return out.producer().inputs[0].producer()


def _condition(context, x, pads, out, **_) -> bool:
    pad, conv = _pad_node(out), out.producer()
    if pad.attributes.get_string("mode", "constant") != "constant" or len(pad.inputs) > 3:
        return False
    if len(pad.inputs) == 3 and pad.inputs[2] is not None:
        value = pad.inputs[2].const_value
        if value is None or float(value.numpy().reshape(-1)[0]) != 0.0:
            return False
    if conv.attributes.get_string("auto_pad", "NOTSET") != "NOTSET":
        return False
    shape, value = static_shape(x), pads.const_value
    if shape is None or value is None:
        return False
    amounts = [int(v) for v in value.numpy()]
    rank = len(shape)
    return (
        len(amounts) == 2 * rank
        and min(amounts) >= 0
        and amounts[0] == amounts[1] == amounts[rank] == amounts[rank + 1] == 0
    )


def _replacement(op, x, pads, out, **_):
    conv = out.producer()
    amounts = [int(v) for v in pads.const_value.numpy()]
    rank = len(amounts) // 2
    spatial = rank - 2
    old = list(conv.attributes.get_ints("pads", [0] * (2 * spatial)))
    new = [old[i] + amounts[2 + i] for i in range(spatial)] + [
        old[spatial + i] + amounts[rank + 2 + i] for i in range(spatial)
    ]
    attrs = {name: attr.value for name, attr in conv.attributes.items() if name != "pads"}
    return op.Conv(x, *conv.inputs[1:], pads=new, **attrs)


PASS = Pass(
    name="pad_into_conv",
    summary="Pad(0) -> Conv becomes one Conv with the pads added (Pad not in MLProgram < 1.32)",
    rules=(RewriteRule(_target, _replacement, _condition, name="pad_into_conv"),),
)
