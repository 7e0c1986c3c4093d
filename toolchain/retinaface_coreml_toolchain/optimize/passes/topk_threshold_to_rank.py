"""The k-nearest-neighbour mask ``x >= topk(x, k).values[..., k-1]`` -> a rank count, no TopK.

ME-GraphAU's GNN (OpenFace 3.0's MTL AU head) builds its graph with
``adj = (si >= si.topk(k)[0][:, :, -1].view(b, n, 1)).float()``: TopK, then Gather/Slice and
Reshape of the k-th value, GreaterOrEqual, Cast to float.

Rejected: the CoreML EP has no builder for TopK or GreaterOrEqual (absent from ``BUILDERS`` in
``toolchain/coverage/rules/ort_1_22.py``; 1.23 and 1.32 add neither): both fail with "no
builder", and split the graph into a CPU island in the middle of the model.

The rewrite: with ``count[j] = #{l : x[l] > x[j]}`` along the TopK axis,
``x[j] >= v_k  <=>  count[j] < k``, where v_k is the k-th largest value counting repeats (the
``values[k-1]`` of a sorted TopK). (If x[j] >= v_k, only values above v_k, at most k-1 of them,
exceed x[j]; if x[j] < v_k, v_1..v_k all exceed it.) ``count`` is the ReduceSum of
``positive_step(x[..., None, :] - x[..., :, None])`` (``common.positive_step``: Mul and Clip,
every tie, the diagonal l = j included, counts 0), and the mask is ``Clip(k - count, 0, 1)``,
both on small integers held exactly in float32.

Equal: exact for finite inputs, ties included (tied values are all kept, as ``>=`` keeps them);
not for NaN, nor on hardware that flushes subnormals (see ``compare_to_mask``). Handled: TopK
with largest=1, sorted=1, a constant k, on the last axis of a float input of rank <= 3 (the
pairwise tensor then has rank <= 4).
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
    int64s,
    is_float,
    positive_step,
    static_shape,
)

# Ops that move the selected k-th values into the broadcast shape without reordering them.
RESHAPES = frozenset({"Reshape", "Unsqueeze", "Squeeze", "Identity"})


def _selects_last(node, k: int, axis: int, rank: int) -> bool:
    """Whether a Gather/Slice node picks exactly element k-1 of the TopK ``axis``."""
    if node.op_type == "Gather":
        if node.attributes.get_int("axis", 0) % rank != axis:
            return False
        indices = node.inputs[1].const_value
        return (
            indices is not None
            and indices.numpy().size == 1
            and (int(indices.numpy().reshape(-1)[0]) % k == k - 1)
        )
    consts = [v.const_value if v is not None else None for v in node.inputs[1:]]
    if len(consts) < 3 or any(c is None for c in consts):
        return False  # Slice without constant starts, ends and axes
    starts, ends, axes = (c.numpy().reshape(-1) for c in consts[:3])
    steps = consts[3].numpy().reshape(-1) if len(consts) > 3 else np.ones_like(starts)
    if len(axes) != 1 or int(axes[0]) % rank != axis:
        return False
    picked = np.arange(k)[slice(int(starts[0]), int(ends[0]), int(steps[0]))]
    return picked.tolist() == [k - 1]


def topk_k(x, threshold) -> int | None:
    """k when ``threshold`` is TopK(x).values[..., k-1] broadcast against x, else None."""
    shape = static_shape(x)
    if shape is None or static_shape(threshold) != (*shape[:-1], 1):
        return None
    value, picker = threshold, None
    while (node := value.producer()) is not None:
        if node.op_type in RESHAPES:
            value = node.inputs[0]
        elif node.op_type in ("Gather", "Slice") and picker is None:
            picker, value = node, node.inputs[0]
        elif node.op_type == "TopK":
            break
        else:
            return None
    if node is None or picker is None or value is not node.outputs[0] or node.inputs[0] is not x:
        return None
    k_value, rank = node.inputs[1].const_value, len(shape)
    attrs = node.attributes
    if k_value is None or attrs.get_int("largest", 1) != 1 or attrs.get_int("sorted", 1) != 1:
        return None
    k = int(k_value.numpy().reshape(-1)[0])
    axis = attrs.get_int("axis", -1) % rank
    if axis != rank - 1 or not 1 <= k <= shape[-1] or not _selects_last(picker, k, axis, rank):
        return None
    return k


def _compare_inputs(cond):
    """(x, threshold) of the GreaterOrEqual producing ``cond``, else None."""
    node = cond.producer()
    if node is None or node.op_type != "GreaterOrEqual" or node.domain not in ("", "ai.onnx"):
        return None
    return node.inputs[0], node.inputs[1]


def _target(op, cond):
    return op.Cast(cond, _allow_other_attributes=True, _outputs=["out"])


def _condition(context, cond, out, **_) -> bool:
    inputs = _compare_inputs(cond)
    if inputs is None:
        return False
    x, threshold = inputs
    shape = static_shape(x)
    return (
        is_float(x)
        and shape is not None
        and len(shape) <= 3
        and out.producer().attributes.get_int("to", 0) == FLOAT
        and default_opset(context) >= MIN_OPSET
        and topk_k(x, threshold) is not None
    )


def _replacement(op, cond, out, **_):
    x, threshold = _compare_inputs(cond)
    k = topk_k(x, threshold)
    rows = op.Unsqueeze(x, int64s(op, [-1]))  # x[..., j, None]
    cols = op.Unsqueeze(x, int64s(op, [-2]))  # x[..., None, l]
    greater = positive_step(op, op.Sub(cols, rows))  # [x_l > x_j]
    count = op.ReduceSum(greater, int64s(op, [-1]), keepdims=0)
    f32 = np.float32
    room = op.Sub(constant(op, np.array(k, dtype=f32)), count)
    return op.Clip(room, constant(op, np.array(0, dtype=f32)), constant(op, np.array(1, dtype=f32)))


PASS = Pass(
    name="topk_threshold_to_rank",
    summary="x >= TopK(x, k)[k-1] (kNN mask) -> Clip(k - #{greater}, 0, 1); TopK removed",
    rules=(RewriteRule(_target, _replacement, _condition, name="topk_threshold_to_rank"),),
)
