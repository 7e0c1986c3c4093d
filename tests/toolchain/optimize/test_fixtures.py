"""The pattern fixtures: valid, runnable, rejected by the predictor as in the real models."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from retinaface_coreml_toolchain.coverage.api import analyse
from retinaface_coreml_toolchain.coverage.graph import load_graph
from retinaface_coreml_toolchain.coverage.rules import table_for
from retinaface_coreml_toolchain.coverage.support import Verdict
from tests.toolchain.optimize import fixtures

ZOO = Path(__file__).resolve().parents[3] / "models" / "zoo"

# What the predictor rejects in each fixture (level-1 graph, MLProgram): (op, code) per version.
EINSUM = [("Einsum", "no-builder")]
EXPECTED = {
    "flatten_after_global_pool": {"1.23": [("Flatten", "format")], "1.32": [("Flatten", "format")]},
    "einsum_similarity": {"1.23": EINSUM, "1.32": EINSUM},
    "einsum_aggregate": {"1.23": EINSUM, "1.32": EINSUM},
    "reduce_l2_normalize": {
        v: [("ReduceL2", "no-builder"), ("Expand", "no-builder")] for v in ("1.23", "1.32")
    },
    "expand_constant_shape": {v: [("Expand", "no-builder")] for v in ("1.23", "1.32")},
    "batchnorm_rank3": {v: [("BatchNormalization", "rank")] for v in ("1.23", "1.32")},
    "batchnorm_rank2": {v: [("BatchNormalization", "rank")] for v in ("1.23", "1.32")},
    # ORT's own level-1 PadFusion folds a constant-0 Pad into the Conv before the EP looks.
    "pad_before_conv": {"1.23": [], "1.32": []},
    "knn_adjacency": {
        "1.23": [
            ("Einsum", "no-builder"),
            ("TopK", "no-builder"),
            ("Gather", "scalar-indices"),
            ("GreaterOrEqual", "no-builder"),
            ("Cast", "input-type"),
            ("Einsum", "no-builder"),
        ],
        "1.32": [
            ("Einsum", "no-builder"),
            ("TopK", "no-builder"),
            ("GreaterOrEqual", "no-builder"),
            ("Einsum", "no-builder"),
        ],
    },
    "coordconv_boundary": {
        "1.23": [("Greater", "no-builder"), ("Where", "no-builder"), ("Where", "no-builder")],
        "1.32": [("Greater", "no-builder")],
    },
}


def rejected(model: onnx.ModelProto, version: str, tmp_path: Path) -> list[Verdict]:
    """What the predictor rejects in ``model``'s level-1 graph (ORT's own rewrites first)."""
    path = tmp_path / f"model-{version}.onnx"
    onnx.save(model, str(path))
    coverage = analyse(
        load_graph(path), table_for(version), model_format="mlprogram", require_static_shapes=False
    )
    return list(coverage.rejected)


def test_every_pattern_has_an_expectation() -> None:
    assert set(EXPECTED) == set(fixtures.PATTERNS)


@pytest.mark.parametrize("name", sorted(fixtures.PATTERNS))
def test_fixture_runs_on_every_input_case(name: str) -> None:
    build, target = fixtures.PATTERNS[name]
    model = build()
    assert target in {n.op_type for n in model.graph.node}
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    cases = dict(fixtures.input_cases(model))
    assert list(cases) == ["random", "zeros", "negative", "ties"]
    for feeds in cases.values():
        for out in session.run(None, feeds):
            assert np.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(fixtures.PATTERNS))
def test_predictor_rejects_what_the_real_model_has_rejected(name: str, tmp_path: Path) -> None:
    model = fixtures.PATTERNS[name][0]()
    for version, expected in EXPECTED[name].items():
        found = [(v.op_type, v.code) for v in rejected(model, version, tmp_path)]
        assert found == expected, version


def test_ties_case_really_ties() -> None:
    """TopK meets equal candidates: some row of x·xᵀ repeats its 4th-largest value."""
    model = fixtures.knn_adjacency()
    feeds = dict(fixtures.input_cases(model))["ties"]
    x = feeds["x"][0]
    sim = x @ x.T
    fourth = np.sort(sim, axis=-1)[:, -4]
    assert any((row == value).sum() > 1 for row, value in zip(sim, fourth, strict=True))


def test_variants_the_passes_must_leave_or_handle() -> None:
    shared = fixtures.batchnorm_rank3(shared_initializers=True)
    bn = next(n for n in shared.graph.node if n.op_type == "BatchNormalization")
    assert bn.input[1] == bn.input[4] and bn.input[2] == bn.input[3]
    assert fixtures.expand_constant_shape(consumer=None).graph.output[0].name == "y"
    reflect = fixtures.pad_before_conv(mode="reflect")
    assert helper.get_attribute_value(reflect.graph.node[1].attribute[0]) == b"reflect"
    abt = fixtures.einsum_batched_matmul("bij,bkj->bik", [2, 3, 4], [2, 5, 4], [2, 3, 5])
    a, b = np.ones((2, 3, 4), np.float32), np.ones((2, 5, 4), np.float32)
    session = ort.InferenceSession(abt.SerializeToString(), providers=["CPUExecutionProvider"])
    assert session.run(None, {"a": a, "b": b})[0].shape == (2, 3, 5)


# --- against the exported zoo models (`make zoo`); skipped, and said so, when they are absent.


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    found = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            found[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return found


MIRRORED = [
    ("mtl_b1.onnx", "flatten_after_global_pool", "/base_model/global_pool/flatten/Flatten"),
    ("mtl_b1.onnx", "knn_adjacency", "/au_regressor/gnn/Einsum"),
    ("mtl_b1.onnx", "knn_adjacency", "/au_regressor/gnn/TopK"),
    ("mtl_b1.onnx", "knn_adjacency", "/au_regressor/gnn/Gather_2"),
    ("mtl_b1.onnx", "knn_adjacency", "/au_regressor/gnn/GreaterOrEqual"),
    ("mtl_b1.onnx", "knn_adjacency", "/au_regressor/gnn/Cast"),
    ("mtl_b1.onnx", "knn_adjacency", "/au_regressor/gnn/Einsum_1"),
    ("mtl_b1.onnx", "reduce_l2_normalize", "/au_regressor/ReduceL2_1"),
    ("mtl_b1.onnx", "reduce_l2_normalize", "/au_regressor/Expand_1"),
    ("mtl_b1.onnx", "batchnorm_rank3", "/au_regressor/gnn/bnv/BatchNormalization"),
    # The dynamic model computes the pads from shapes; only the padding value is a constant.
    ("mtl.onnx", "pad_before_conv", "/base_model/conv_stem/Pad"),
    ("star_b1.onnx", "coordconv_boundary", "/hgs.1/coordconv/addcoords/Greater"),
    ("star_b1.onnx", "coordconv_boundary", "/hgs.1/coordconv/addcoords/Where"),
    ("star_b1.onnx", "coordconv_boundary", "/hgs.1/coordconv/addcoords/Slice"),
]


@pytest.fixture(scope="module")
def zoo_models() -> dict[str, onnx.ModelProto]:
    needed = {model for model, _, _ in MIRRORED}
    missing = [name for name in needed if not (ZOO / name).is_file()]
    if missing:
        message = f"models/zoo/{missing[0]} is missing: `make zoo` exports the real models"
        if os.environ.get("RETINAFACE_ZOO_REQUIRED"):  # `make zoo`: these checks are its point
            pytest.fail(message)
        pytest.skip(message)
    return {name: onnx.load(str(ZOO / name)) for name in needed}


@pytest.mark.parametrize(("model", "pattern", "node"), MIRRORED, ids=lambda v: str(v))
def test_fixture_node_mirrors_the_real_one(
    zoo_models: dict[str, onnx.ModelProto], model: str, pattern: str, node: str
) -> None:
    """Same op, attributes, and the same dtype and rank of every constant input."""
    real_model = zoo_models[model]
    fixture_model = fixtures.PATTERNS[pattern][0]()
    real = next(n for n in real_model.graph.node if n.name == node)
    mine = next(n for n in fixture_model.graph.node if n.name == node)
    assert (mine.op_type, _attrs(mine)) == (real.op_type, _attrs(real))
    real_consts, my_consts = _constants(real_model), _constants(fixture_model)
    for slot, (real_in, my_in) in enumerate(zip(real.input, mine.input, strict=True)):
        if (node, slot) == ("/base_model/conv_stem/Pad", 1):
            continue
        assert (real_in in real_consts) == (my_in in my_consts), (real_in, my_in)
        if real_in in real_consts and my_in in my_consts:
            r, m = real_consts[real_in], my_consts[my_in]
            assert (r.dtype, r.ndim) == (m.dtype, m.ndim), (real_in, my_in)
