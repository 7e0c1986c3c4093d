"""The registry of rewrite passes, in the order the driver tries them.

The kNN mask pass runs before the generic compare pass: both match GreaterOrEqual, and only
the first also removes the TopK that feeds it.

No Pad -> Conv pass: ORT's level-1 PadFusion (and onnxsim, once shapes are fixed) already folds
a constant-0 Pad into the Conv's pads before the CoreML EP looks, so the predictor never sees
that Pad and such a pass could never be kept.
"""

from __future__ import annotations

from retinaface_coreml_toolchain.optimize.passes import (
    batchnorm_to_rank4,
    compare_to_mask,
    einsum_to_matmul,
    expand_to_mul,
    flatten_to_reshape,
    reduce_l2_to_sqrt_sum,
    topk_threshold_to_rank,
)
from retinaface_coreml_toolchain.optimize.passes.common import Pass

REGISTRY: tuple[Pass, ...] = (
    flatten_to_reshape.PASS,
    einsum_to_matmul.PASS,
    reduce_l2_to_sqrt_sum.PASS,
    expand_to_mul.PASS,
    batchnorm_to_rank4.PASS,
    topk_threshold_to_rank.PASS,
    compare_to_mask.PASS,
)
