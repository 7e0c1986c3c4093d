"""The real RetinaFace graphs: the source model (dynamic H/W) and the static buckets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import jsonschema
import onnxruntime
import pytest

from retinaface_coreml_toolchain.coverage.api import CoverageRequest, bucket_gate, run_coverage
from retinaface_coreml_toolchain.coverage.graph import load_graph
from tests.toolchain.coverage.coverage_graphs import ROOT, built_buckets

FORMATS = ("mlprogram", "neuralnetwork")

SHAPE_CHAIN_1_24 = {
    ("Concat", "input-type"): 4,  # int64 Concat of the Resize sizes
    ("Gather", "scalar-indices"): 4,
    ("Reshape", "dynamic-shape"): 9,  # heads: data input [?, ?, ?, k]
    ("Resize", "input-not-constant"): 2,  # computed sizes
    ("Softmax", "dynamic-shape"): 1,  # Softmax-11 on [?, ?, 2]
    ("Unsqueeze", "input-type"): 4,  # int64
}
# (version, format) -> (P, S, partition sizes, rejected by (op, code))
SOURCE_FIGURES = {
    ("1.22", "mlprogram"): (4, 120, [79, 20, 18, 3], SHAPE_CHAIN_1_24),
    ("1.23", "mlprogram"): (4, 120, [79, 20, 18, 3], SHAPE_CHAIN_1_24),
    ("1.24", "mlprogram"): (4, 120, [79, 20, 18, 3], SHAPE_CHAIN_1_24),
    ("1.32", "mlprogram"): (
        4, 124, [83, 20, 18, 3],
        {k: n for k, n in SHAPE_CHAIN_1_24.items() if k[0] != "Gather"},
    ),
    **{
        (v, "neuralnetwork"): (3, 117, [79, 20, 18],
                               {**SHAPE_CHAIN_1_24, ("Concat", "nn-rank"): 3})
        for v in ("1.22", "1.23", "1.24")
    },
    ("1.32", "neuralnetwork"): (
        3, 121, [83, 20, 18],
        {**{k: n for k, n in SHAPE_CHAIN_1_24.items() if k[0] != "Gather"},
         ("Concat", "nn-rank"): 3},
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def source_reports(source_model: Path) -> dict[str, dict]:
    return {
        v: run_coverage(CoverageRequest(model=source_model, ort_version=v)).to_dict()
        for v in ("1.22", "1.23", "1.24", "1.32")
    }


def test_source_level1_graph(source_model: Path) -> None:
    graph = load_graph(source_model)
    assert len(graph.nodes) == 144
    assert Counter(n.op_type for n in graph.nodes) == {
        "Conv": 56, "LeakyRelu": 38, "Concat": 10, "Transpose": 9, "Reshape": 9, "Shape": 4,
        "Gather": 4, "Unsqueeze": 4, "Relu": 3, "Slice": 2, "Resize": 2, "Add": 2, "Softmax": 1,
    }  # fmt: skip
    softmax = next(n for n in graph.nodes if n.op_type == "Softmax")
    assert softmax.since_version == 11


@pytest.mark.parametrize(("version", "fmt"), sorted(SOURCE_FIGURES))
def test_source_model_figures(source_reports: dict, version: str, fmt: str) -> None:
    partitions, supported, sizes, rejected = SOURCE_FIGURES[(version, fmt)]
    cov = source_reports[version]["formats"][fmt]
    assert cov["nodes_in_graph"] == 144
    assert (cov["partitions"], cov["nodes_supported"]) == (partitions, supported)
    assert cov["partition_sizes"] == sizes
    assert {(r["op_type"], r["code"]): r["count"] for r in cov["summary"]} == rejected
    assert cov["dropped_trivial_groups"] == []


def test_source_reasons_are_actionable(source_reports: dict) -> None:
    rejected = {r["name"]: r["reason"] for r in source_reports["1.32"]["formats"]["mlprogram"]
                ["rejected"]}  # fmt: skip
    assert rejected["/class_head/Reshape"] == (
        "the data input '/class_head/Transpose_output_0' has a dynamic shape [?, ?, ?, 4]; it "
        "needs static dimensions (fix the model's input shape)"
    )
    assert rejected["/fpn/Resize"].startswith(
        "the sizes input ('/fpn/Concat_1_output_0') is not a constant initializer"
    )
    assert rejected["/Softmax"].startswith("Softmax-11 (opset < 13) needs a static input")
    # The last partition: the three rank-3 head Concats (MLProgram only), fed by CPU Reshapes.
    partitions = source_reports["1.32"]["formats"]["mlprogram"]["partition_nodes"]
    assert partitions[-1] == [
        "/class_head/Concat_3",
        "/landmark_head/Concat_3",
        "/bbox_head/Concat_3",
    ]


def test_source_macs_are_uncounted_not_guessed(source_reports: dict) -> None:
    """Dynamic height and width leave every Conv's spatial size unknown: no share is claimed."""
    macs = source_reports["1.32"]["formats"]["mlprogram"]["macs"]
    assert (macs["total"], macs["share"], len(macs["uncounted"])) == (0, None, 56)


def test_source_fails_the_bucket_gate(source_reports: dict, source_model: Path) -> None:
    report = run_coverage(CoverageRequest(model=source_model, ort_version="1.32",
                                          formats=("mlprogram",)))  # fmt: skip
    assert bucket_gate(report, min_coverage=1.0, max_partitions=1) == (
        "retinaface_mobilenet025.onnx [MLProgram, ORT 1.32]: 86.1% of nodes on CoreML "
        "(124/144), below 100.0%; 4 partitions, above 1"
    )


@pytest.mark.parametrize("version", ["1.23", "1.24", "1.32"])
def test_bucket_is_one_full_mlprogram_partition(bucket_640: Path, version: str) -> None:
    report = run_coverage(CoverageRequest(model=bucket_640, ort_version=version))
    ml = report.to_dict()["formats"]["mlprogram"]
    assert (ml["nodes_in_graph"], ml["nodes_supported"], ml["partitions"]) == (126, 126, 1)
    # Every MAC on CoreML: the Conv layers of MobileNet-0.25, FPN, SSH and heads at 640x640.
    assert (ml["macs"]["total"], ml["macs"]["share"], ml["macs"]["uncounted"]) == (
        981_145_600,
        1.0,
        [],
    )
    assert bucket_gate(report, min_coverage=1.0, max_partitions=1) == (
        "640x640.onnx [NeuralNetwork, ORT " + version + "]: 97.6% of nodes on CoreML (123/126), "
        "below 100.0%; 2 partitions, above 1"
    )
    nn = report.to_dict()["formats"]["neuralnetwork"]
    # NeuralNetwork rejects the three rank-3 head Concats; Softmax is left alone after one.
    assert (nn["nodes_supported"], nn["partition_sizes"]) == (123, [122, 1])
    ml_only = run_coverage(
        CoverageRequest(model=bucket_640, ort_version=version, formats=("mlprogram",))
    )
    assert bucket_gate(ml_only, min_coverage=1.0, max_partitions=1) is None


def test_bucket_on_1_22_softmax_over_16384(bucket_640: Path) -> None:
    """1.20-1.22 reject any input dim > 16384; the 640x640 Softmax input is [1, 16800, 2]."""
    report = run_coverage(CoverageRequest(model=bucket_640, ort_version="1.22",
                                          formats=("mlprogram",))).to_dict()  # fmt: skip
    ml = report["formats"]["mlprogram"]
    assert (ml["nodes_supported"], ml["partitions"]) == (125, 1)
    assert [(r["name"], r["code"]) for r in ml["rejected"]] == [("/Softmax", "dim-limit")]


@pytest.mark.parametrize("bucket", built_buckets(), ids=lambda p: p.stem)
def test_every_built_bucket_passes_the_gate(bucket: Path) -> None:
    report = run_coverage(CoverageRequest(model=bucket, ort_version="1.32", formats=("mlprogram",)))
    assert bucket_gate(report, min_coverage=1.0, max_partitions=1) is None


def test_report_validates_against_schema_and_is_stable(bucket_640: Path, source_model) -> None:
    schema = json.loads((ROOT / "docs" / "coverage.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for model in (source_model, bucket_640):
        first = run_coverage(CoverageRequest(model=model)).to_dict()
        jsonschema.validate(first, schema)
        again = run_coverage(CoverageRequest(model=model)).to_dict()
        assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
        assert str(model.parent) not in json.dumps(first)


def test_schema_rejects_a_broken_report(source_reports: dict) -> None:
    schema = json.loads((ROOT / "docs" / "coverage.schema.json").read_text())
    broken = json.loads(json.dumps(source_reports["1.32"]))
    del broken["formats"]["mlprogram"]["partitions"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_version_mismatch_is_noted(source_reports: dict) -> None:
    installed = onnxruntime.__version__
    if not installed.startswith("1.32."):
        pytest.skip(f"figures pinned for onnxruntime 1.32 (the build extra); found {installed}")
    assert source_reports["1.32"]["notes"] == []
    assert source_reports["1.23"]["notes"] == [
        f"the level-1 graph comes from onnxruntime {installed}, the rules from ORT 1.23; "
        "level-1 rewrites can differ between releases, so install onnxruntime 1.23 for an exact "
        "node count"
    ]


def test_schema_rejects_a_report_without_its_mac_share(source_reports: dict) -> None:
    schema = json.loads((ROOT / "docs" / "coverage.schema.json").read_text())
    broken = json.loads(json.dumps(source_reports["1.32"]))
    del broken["formats"]["mlprogram"]["macs"]["share"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
