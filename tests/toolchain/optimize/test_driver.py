"""The acceptance loop: a pass is kept only when the predictor scores it better."""

from __future__ import annotations

import numpy as np
from onnxscript.rewriter import RewriteRule

from retinaface_coreml_toolchain.optimize.driver import (
    KEPT,
    NO_GAIN,
    NO_MATCH,
    OptimizeOptions,
    optimize_model,
)
from retinaface_coreml_toolchain.optimize.passes import REGISTRY
from retinaface_coreml_toolchain.optimize.passes.common import Pass, constant
from tests.toolchain.optimize import fixtures


def _relu_as_max() -> Pass:
    """Equal but no better for the EP: Relu -> Max(x, 0), both taken in MLProgram."""

    def target(op, x):
        return op.Relu(x)

    def replacement(op, x):
        return op.Max(x, constant(op, np.zeros((), dtype=np.float32)))

    return Pass(name="relu_as_max", summary="test only", rules=(RewriteRule(target, replacement),))


def test_a_pass_without_gain_is_left_out() -> None:
    model = fixtures.coordconv_boundary()
    from onnx import helper

    model.graph.node.append(helper.make_node("Relu", ["y"], ["z"]))
    model.graph.output[0].name = "z"
    options = OptimizeOptions(ort_versions=("1.32",), passes=(_relu_as_max(),))
    optimized, _ = optimize_model(model, options, name="m.onnx")
    (outcome,) = optimized.outcomes
    assert outcome.status == NO_GAIN and outcome.rewrites == 1
    assert outcome.scores_before == outcome.scores_after == {"1.32": (2, 1)}
    assert not optimized.changed and optimized.model is optimized.simplified


def test_rounds_retry_a_pass_once_others_have_run() -> None:
    """Alone, Einsum -> MatMul adds a partition in the kNN block (its MatMul lands between
    CPU islands); after the TopK pass it removes them all."""
    options = OptimizeOptions(ort_versions=("1.23", "1.32"))
    optimized, _ = optimize_model(fixtures.knn_adjacency(), options, name="knn.onnx")
    status = {o.name: o.status for o in optimized.outcomes}
    assert status["einsum_to_matmul"] == KEPT and status["topk_threshold_to_rank"] == KEPT
    assert status["flatten_to_reshape"] == NO_MATCH
    assert [o.name for o in optimized.outcomes] == [p.name for p in REGISTRY]
    einsum = next(o for o in optimized.outcomes if o.name == "einsum_to_matmul")
    assert einsum.scores_after == {"1.23": (1, 0), "1.32": (1, 0)}


def test_check_inputs_hold_zeros_negatives_and_ties_and_only_0_1_for_integers() -> None:
    from retinaface_coreml_toolchain.optimize.equality import check_feeds

    feeds = check_feeds(
        {"x": (2, 8), "ids": (2, 8)}, {"x": np.dtype("float32"), "ids": np.dtype("int64")}
    )
    assert len(feeds) == 20
    xs = np.stack([f["x"] for f in feeds])
    assert not xs[0].any() and (xs[1] == -1).all()
    assert len(np.unique(xs[2])) < xs[2].size  # ties
    assert (xs < 0).any() and (xs > 0).any()
    ids = np.stack([f["ids"] for f in feeds])
    assert ids.dtype == np.int64 and set(np.unique(ids)) <= {0, 1}
