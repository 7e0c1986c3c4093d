"""Each rewrite pass on a small graph: the predictor rejects the node before and takes the
rewritten graph after, and the outputs are equal on random, zero, negative and tied inputs."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from retinaface_coreml_toolchain.optimize.passes import (
    REGISTRY,
    batchnorm_to_rank4,
    compare_to_mask,
    einsum_to_matmul,
    expand_to_mul,
    flatten_to_reshape,
    reduce_l2_to_sqrt_sum,
    topk_threshold_to_rank,
)
from retinaface_coreml_toolchain.optimize.predict import predict
from retinaface_coreml_toolchain.optimize.rewrite import apply_pass
from tests.toolchain.optimize import fixtures

VERSIONS = ("1.23", "1.32")

# (fixture, passes applied in order, op the predictor rejects before, exact equality?)
CASES = {
    "flatten": (fixtures.flatten_after_global_pool, [flatten_to_reshape], "Flatten", True),
    "einsum_similarity": (fixtures.einsum_similarity, [einsum_to_matmul], "Einsum", False),
    "einsum_aggregate": (fixtures.einsum_aggregate, [einsum_to_matmul], "Einsum", False),
    "einsum_abt": (
        lambda: fixtures.einsum_batched_matmul("bij,bkj->bik", [2, 3, 4], [2, 5, 4], [2, 3, 5]),
        [einsum_to_matmul],
        "Einsum",
        False,
    ),
    "einsum_out_transposed": (
        lambda: fixtures.einsum_batched_matmul("bij,bjk->bki", [2, 3, 4], [2, 4, 5], [2, 5, 3]),
        [einsum_to_matmul],
        "Einsum",
        False,
    ),
    "reduce_l2": (
        fixtures.reduce_l2_normalize,
        [reduce_l2_to_sqrt_sum, expand_to_mul],
        "ReduceL2",
        False,
    ),
    "expand_mul": (fixtures.expand_constant_shape, [expand_to_mul], "Expand", True),
    "expand_output": (
        lambda: fixtures.expand_constant_shape(consumer=None),
        [expand_to_mul],
        "Expand",
        True,
    ),
    "batchnorm_rank3": (fixtures.batchnorm_rank3, [batchnorm_to_rank4], "BatchNormalization", True),
    "batchnorm_rank3_shared": (
        lambda: fixtures.batchnorm_rank3(shared_initializers=True),
        [batchnorm_to_rank4],
        "BatchNormalization",
        True,
    ),
    "batchnorm_rank2": (fixtures.batchnorm_rank2, [batchnorm_to_rank4], "BatchNormalization", True),
    "knn": (
        fixtures.knn_adjacency,
        [einsum_to_matmul, topk_threshold_to_rank],
        "TopK",
        False,  # the Einsums' summation order; the mask itself is checked exactly below
    ),
    "coordconv": (fixtures.coordconv_boundary, [compare_to_mask], "Greater", True),
}


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def rewrite(model: onnx.ModelProto, modules) -> onnx.ModelProto:
    for module in modules:
        model, count = apply_pass(model, module.PASS)
        assert count >= 1, module.PASS.name
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.mark.parametrize("case", sorted(CASES))
def test_predictor_rejects_before_and_accepts_after(case: str) -> None:
    build, modules, op, _ = CASES[case]
    before = build()
    after = rewrite(before, modules)
    rejected_before = predict(before, VERSIONS, ("mlprogram",))
    accepted_after = predict(after, VERSIONS, ("mlprogram",))
    for version in VERSIONS:
        cov = rejected_before.coverages[(version, "mlprogram")]
        assert op in {v.op_type for v in cov.rejected}, version
        cov = accepted_after.coverages[(version, "mlprogram")]
        assert [(v.op_type, v.reason) for v in cov.rejected] == [], version
        assert len(cov.partitions) == 1, version


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_equal_on_random_zero_negative_and_tied_inputs(case: str) -> None:
    build, modules, _, exact = CASES[case]
    before = build()
    after = rewrite(before, modules)
    for name, feeds in fixtures.input_cases(before):
        for want, got in zip(run(before, feeds), run(after, feeds), strict=True):
            assert want.shape == got.shape
            if exact:
                np.testing.assert_array_equal(got, want, err_msg=name)
            else:
                scale = max(float(np.abs(want).max()), 1e-30)
                assert float(np.abs(got - want).max()) <= 1e-6 * scale, name


def _knn_mask_model() -> onnx.ModelProto:
    """knn_adjacency cut after the Cast: the 0/1 adjacency itself as the output."""
    model = fixtures.knn_adjacency()
    cast = next(n for n in model.graph.node if n.op_type == "Cast")
    del model.graph.output[:]
    model.graph.output.append(onnx.helper.make_tensor_value_info(cast.output[0], 1, None))
    return model


def test_knn_mask_is_exact_with_ties() -> None:
    """The mask equals TopK's >= threshold exactly, and the tie case selects more than K."""
    before = _knn_mask_model()
    after = rewrite(before, [einsum_to_matmul, topk_threshold_to_rank])
    assert "TopK" not in {n.op_type for n in after.graph.node}
    selected_more = False
    for name, feeds in fixtures.input_cases(before):
        (want,), (got,) = run(before, feeds), run(after, feeds)
        np.testing.assert_array_equal(got, want, err_msg=name)
        selected_more |= bool((want.sum(-1) > 4).any())
    assert selected_more  # ties really met: more than K neighbours kept


@pytest.mark.parametrize("op_type", ["Greater", "GreaterOrEqual", "Less", "LessOrEqual"])
def test_every_compare_matches_numpy_on_ties(op_type: str) -> None:
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node(op_type, ["a", "b"], ["c"]),
        helper.make_node("Cast", ["c"], ["y"], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes,
        "cmp",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 3, 4]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, 1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    after = rewrite(model, [compare_to_mask])
    rng = np.random.default_rng(0)
    tiny = np.float32(1e-45)  # the smallest subnormal: a - b is still not 0
    for a, b in [
        (rng.integers(-1, 2, (2, 3, 4)), rng.integers(-1, 2, (1, 3, 1))),
        (np.zeros((2, 3, 4)), -np.zeros((1, 3, 1))),
        (np.full((2, 3, 4), tiny), np.zeros((1, 3, 1))),
        (rng.standard_normal((2, 3, 4)), rng.standard_normal((1, 3, 1))),
        (np.full((2, 3, 4), 3e38), np.full((1, 3, 1), -3e38)),  # a - b overflows to inf
    ]:
        feeds = {"a": a.astype(np.float32), "b": b.astype(np.float32)}
        np.testing.assert_array_equal(run(after, feeds)[0], run(model, feeds)[0])


def test_left_alone_when_the_form_is_not_handled() -> None:
    ellipsis = fixtures.einsum_batched_matmul("...ij,...jk->...ik", [2, 3, 4], [2, 4, 5], [2, 3, 5])
    assert apply_pass(ellipsis, einsum_to_matmul.PASS)[1] == 0
    vector = fixtures.einsum_batched_matmul("bij,bj->bi", [2, 3, 4], [2, 4], [2, 3])
    assert apply_pass(vector, einsum_to_matmul.PASS)[1] == 0
    rank4 = fixtures.batchnorm_rank3()
    assert apply_pass(fixtures.flatten_after_global_pool(), batchnorm_to_rank4.PASS)[1] == 0
    assert apply_pass(rank4, flatten_to_reshape.PASS)[1] == 0


def test_untouched_model_is_returned_as_is() -> None:
    """No match: the same ModelProto object, so a bucket's bytes stay what onnxsim wrote."""
    model = fixtures.batchnorm_rank3()
    for rewrite_pass in REGISTRY:
        if rewrite_pass.name != "batchnorm_to_rank4":
            assert apply_pass(model, rewrite_pass) == (model, 0)


def test_every_pass_docstring_cites_its_rule_and_equality() -> None:
    import importlib

    for rewrite_pass in REGISTRY:
        module = importlib.import_module(
            f"retinaface_coreml_toolchain.optimize.passes.{rewrite_pass.name}"
        )
        doc = module.__doc__ or ""
        assert "toolchain/coverage/rules/" in doc, rewrite_pass.name
        assert "Rejected:" in doc and "Equal:" in doc, rewrite_pass.name
