"""The registry of rewrite passes, in the order the driver tries them.

The kNN mask pass runs before the generic compare pass: both match GreaterOrEqual, and only
the first also removes the TopK that feeds it.
"""

from __future__ import annotations

from toolchain.optimize.passes import (
    batchnorm_to_rank4,
    compare_to_argmax,
    einsum_to_matmul,
    expand_to_mul,
    flatten_to_reshape,
    pad_into_conv,
    reduce_l2_to_sqrt_sum,
    topk_threshold_to_rank,
)
from toolchain.optimize.passes.common import Pass

REGISTRY: tuple[Pass, ...] = (
    flatten_to_reshape.PASS,
    einsum_to_matmul.PASS,
    reduce_l2_to_sqrt_sum.PASS,
    expand_to_mul.PASS,
    batchnorm_to_rank4.PASS,
    pad_into_conv.PASS,
    topk_threshold_to_rank.PASS,
    compare_to_argmax.PASS,
)
