"""`toolchain coverage`: exit codes, the gate line, --json, version errors, --real off macOS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from retinaface_coreml_toolchain.cli import cli


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_bucket_passes_the_gate(runner: CliRunner, bucket_640: Path) -> None:
    result = runner.invoke(cli, ["coverage", str(bucket_640), "--format", "mlprogram",
                                 "--min-coverage", "1.0", "--max-partitions", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "[MLProgram]  nodes in graph: 126  supported: 126 (100.0%)  partitions: 1" in (
        result.stdout
    )


def test_source_fails_the_gate_with_one_line(runner: CliRunner, source_model: Path) -> None:
    result = runner.invoke(cli, ["coverage", str(source_model), "--ort-version", "1.32",
                                 "--min-coverage", "1.0", "--max-partitions", "1"])  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr == (
        "error: retinaface_mobilenet025.onnx [MLProgram, ORT 1.32]: 86.1% of nodes on CoreML "
        "(124/144), below 100.0%; 4 partitions, above 1\n"
    )
    assert "ORT would log: CoreMLExecutionProvider::GetCapability, number of partitions " in (
        result.stdout
    )


def test_default_shows_both_formats_with_reasons(runner: CliRunner, source_model: Path) -> None:
    result = runner.invoke(cli, ["coverage", str(source_model), "--ort-version", "1.23"])
    assert result.exit_code == 0
    assert "[MLProgram]  nodes in graph: 144  supported: 120 (83.3%)  partitions: 4" in (
        result.stdout
    )
    assert "[NeuralNetwork]  nodes in graph: 144  supported: 117 (81.2%)  partitions: 3" in (
        result.stdout
    )
    assert (
        "    Gather /fpn/Gather: scalar (rank-0) 'indices' are not supported before ORT 1.32"
        in result.stdout
    )


def test_json_is_the_report_record(runner: CliRunner, source_model: Path) -> None:
    result = runner.invoke(cli, ["coverage", str(source_model), "--json", "--ort-version",
                                 "1.24", "--format", "neuralnetwork"])  # fmt: skip
    assert result.exit_code == 0
    record = json.loads(result.stdout)
    assert record["rules"] == "1.24"
    assert list(record["formats"]) == ["neuralnetwork"]
    nn = record["formats"]["neuralnetwork"]
    assert (nn["partitions"], nn["nodes_in_graph"], nn["nodes_supported"]) == (3, 144, 117)


def test_require_static_shapes_flag(runner: CliRunner, source_model: Path) -> None:
    result = runner.invoke(cli, ["coverage", str(source_model), "--json",
                                 "--require-static-shapes", "--format", "mlprogram"])  # fmt: skip
    ml = json.loads(result.stdout)["formats"]["mlprogram"]
    # Every node touching the dynamic H/W goes; only the shape arithmetic on the fixed-size
    # shape vectors (Gather, Slice of a [4] int64) stays on CoreML.
    assert json.loads(result.stdout)["require_static_shapes"] is True
    assert ml["partition_nodes"] == [
        ["/fpn/Gather_3", "/fpn/Gather_2", "/fpn/Gather_1", "/fpn/Gather", "/fpn/Slice"],
        ["/fpn/Slice_1"],
    ]
    assert {r["code"] for r in ml["rejected"] if r["op_type"] == "Conv"} == {"dynamic-shape"}


@pytest.mark.parametrize("version", ["1.19", "1.40", "banana"])
def test_unknown_version_exits_2(runner: CliRunner, source_model: Path, version: str) -> None:
    result = runner.invoke(cli, ["coverage", str(source_model), "--ort-version", version])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "modelled: 1.22, 1.23, 1.24, 1.32" in result.stderr


@pytest.mark.parametrize(
    ("version", "table"), [("1.25.0", "1.24"), ("1.30.0", "1.32"), ("1.31.0", "1.32")]
)
def test_a_series_between_tables_uses_the_table_its_binary_matches(
    runner: CliRunner, source_model: Path, version: str, table: str
) -> None:
    result = runner.invoke(cli, ["coverage", str(source_model), "--ort-version", version, "--json"])
    assert json.loads(result.stdout)["rules"] == table


def test_a_series_no_table_matches_is_refused(runner: CliRunner, source_model: Path) -> None:
    result = runner.invoke(cli, ["coverage", str(source_model), "--ort-version", "1.28.0"])
    assert result.exit_code == 2
    assert "no CoreML rule table for ONNX Runtime 1.28.0" in result.stderr
    assert "1.26-1.29 match no table" in result.stderr


def test_missing_model_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["coverage", str(tmp_path / "nope.onnx")])
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nope.onnx'}: no such model file\n"


def test_bad_model_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    result = runner.invoke(cli, ["coverage", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {bad}: onnxruntime cannot load it")


def test_real_needs_macos(runner: CliRunner, source_model: Path) -> None:
    import onnxruntime

    if "CoreMLExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("the CoreML EP is here; tests/toolchain/coverage/test_real.py covers it")
    result = runner.invoke(cli, ["coverage", str(source_model), "--real"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        "error: --real needs macOS with onnxruntime's CoreMLExecutionProvider; this is "
    )
    assert result.stderr.count("\n") == 1


def test_cli_builds_the_request(runner: CliRunner, monkeypatch, tmp_path: Path) -> None:
    """The interceptor: the options become this request, and nothing else."""
    from retinaface_coreml_toolchain.coverage import api
    from retinaface_coreml_toolchain.coverage.report import CoverageReport

    seen = []

    def fake_run(request):
        seen.append(request)
        return CoverageReport(model="m.onnx", graph_ort_version="x", rules="1.23",
                              requested_ort_version="1.23", require_static_shapes=True,
                              coreml_version=7, notes=(), coverages=())  # fmt: skip

    monkeypatch.setattr(api, "run_coverage", fake_run)
    result = runner.invoke(cli, ["coverage", "m.onnx", "--ort-version", "1.23", "--format",
                                 "neuralnetwork", "--require-static-shapes"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert seen == [api.CoverageRequest(model=Path("m.onnx"), ort_version="1.23",
                                        formats=("neuralnetwork",),
                                        require_static_shapes=True)]  # fmt: skip
