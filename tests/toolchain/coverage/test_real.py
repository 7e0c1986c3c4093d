"""The --real module: log parsing and rendering here; the real EP only where it exists."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from retinaface_coreml_toolchain.coverage.api import CoverageRequest, run_coverage
from retinaface_coreml_toolchain.coverage.real import (
    RealCoverage,
    parse_summary,
    render_side_by_side,
    run_real,
    unavailable_reason,
)

# A summary line as ORT 1.23.2/1.24.4 print it (spec §8; ISSUE #28022 logs).
LOG = (
    "2026-01-01 [W:onnxruntime:, coreml_execution_provider.cc:113 GetCapability] "
    "CoreMLExecutionProvider::GetCapability, number of partitions supported by CoreML: 4 "
    "number of nodes in the graph: 144 number of nodes supported by CoreML: 124\n"
)


def test_parse_summary() -> None:
    assert parse_summary("noise\n" + LOG) == (4, 144, 124)
    assert parse_summary("no summary here") is None


def test_unavailable_reason() -> None:
    assert unavailable_reason(platform="darwin", providers=["CoreMLExecutionProvider"]) is None
    assert unavailable_reason(platform="linux", providers=["CPUExecutionProvider"]) == (
        "--real needs macOS with onnxruntime's CoreMLExecutionProvider; this is linux with "
        "CPUExecutionProvider"
    )


def test_side_by_side_marks_differences(source_model: Path) -> None:
    record = run_coverage(
        CoverageRequest(model=source_model, ort_version="1.32", formats=("mlprogram",))
    ).to_dict()
    real = RealCoverage(model_format="mlprogram", partitions=5, nodes_in_graph=144,
                        nodes_supported=124, partition_nodes=None)  # fmt: skip
    text = render_side_by_side(record, [real])
    assert "MLProgram     partitions           4       5  <- differs" in text
    assert "MLProgram     supported          124     124" in text


@pytest.mark.coreml
@pytest.mark.skipif(sys.platform != "darwin", reason="needs macOS with the CoreML EP")
def test_real_ep_matches_prediction(bucket_640: Path) -> None:
    pytest.importorskip("onnxruntime")
    real = run_real(bucket_640, model_format="mlprogram", require_static_shapes=False)
    record = run_coverage(CoverageRequest(model=bucket_640, formats=("mlprogram",))).to_dict()
    ml = record["formats"]["mlprogram"]
    assert (real.partitions, real.nodes_in_graph, real.nodes_supported) == (
        ml["partitions"], ml["nodes_in_graph"], ml["nodes_supported"],
    )  # fmt: skip
