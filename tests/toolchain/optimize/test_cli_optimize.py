"""`toolchain optimize`: the record and its schema, the targets on small graphs, the errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper
from onnxscript.rewriter import RewriteRule

from retinaface_coreml_toolchain.cli import cli
from retinaface_coreml_toolchain.optimize import passes
from retinaface_coreml_toolchain.optimize.passes.common import Pass, int64s
from tests.conftest import ROOT
from tests.toolchain.optimize import fixtures

SCHEMA = json.loads((ROOT / "docs" / "optimize.schema.json").read_text())


def invoke(*args: str):
    return CliRunner().invoke(cli, ["optimize", *map(str, args)])


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_json_report_is_valid_and_meets_the_targets(tmp_path: Path) -> None:
    src = save(fixtures.knn_adjacency(), tmp_path / "knn.onnx")
    out = tmp_path / "knn.opt.onnx"
    result = invoke(src, "-o", out, "--ort-version", "1.23", "--ort-version", "1.32", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    jsonschema.validate(record, SCHEMA)
    assert record["model"] == "knn.onnx" and record["output"] == "knn.opt.onnx"
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    before = record["stages"]["simplified"]["coverage"]
    assert before["1.23"]["mlprogram"]["partitions"] > 1
    assert {n["op_type"] for n in before["1.32"]["mlprogram"]["cpu_nodes"]} >= {"TopK", "Einsum"}
    for version in ("1.23", "1.32"):
        assert record["targets"][version] == {
            "one_partition": True,
            "cpu_only_downstream": True,
            "mac_share_99": True,
            "equal": True,
        }
        cell = record["stages"]["out"]["coverage"][version]["mlprogram"]
        assert cell["cpu_nodes"] == [] and cell["mac_share"] == 1.0
        assert "neuralnetwork" in record["stages"]["out"]["coverage"][version]
    kept = [p["name"] for p in record["passes"] if p["status"] == "kept"]
    assert kept == ["einsum_to_matmul", "topk_threshold_to_rank"]
    assert record["stages"]["out"]["relative_diff"] <= 1e-4


def test_text_table_lists_stages_passes_and_cpu_nodes(tmp_path: Path) -> None:
    src = save(fixtures.coordconv_boundary(), tmp_path / "star_block.onnx")
    result = invoke(src, "-o", tmp_path / "out.onnx", "--ort-version", "1.23")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "MACs on CoreML" in text and "max |diff|" in text
    assert re.search(r"compare_to_mask +kept +2 rewrite", text)
    assert "[ORT 1.23, MLProgram] none" in text
    # NeuralNetwork is reported beside (the mask's Mul and Clip are taken there too).
    assert "[ORT 1.23, NeuralNetwork] none" in text


def test_dynamic_dims_default_to_one_and_input_shape_overrides(tmp_path: Path) -> None:
    model = fixtures.flatten_after_global_pool()
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[0].ClearField("dim_value")
    dims[0].dim_param = "batch"
    src = save(model, tmp_path / "dyn.onnx")
    result = invoke(src, "-o", tmp_path / "a.onnx", "--json")
    assert json.loads(result.stdout)["input_shapes"] == {"x": [1, 16, 4, 4]}
    result = invoke(src, "-o", tmp_path / "b.onnx", "--input-shape", "x=2,16,4,4", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["input_shapes"] == {"x": [2, 16, 4, 4]}


@pytest.mark.parametrize(
    ("shape", "words"),
    [
        ("nope=1,16,4,4", ["no input named 'nope'", "inputs: x"]),
        ("x=1,16,16", ["rank 3", "rank 4"]),
        ("x=1,8,4,4", ["dim 1 is 8", "fixes it to 16"]),
        ("x=1,a", ["NAME=D1,D2"]),
    ],
)
def test_bad_input_shape_is_one_line_exit_2_and_no_output(
    tmp_path: Path, shape: str, words: list[str]
) -> None:
    src = save(fixtures.flatten_after_global_pool(), tmp_path / "m.onnx")
    out = tmp_path / "out.onnx"
    line = one_error_line(invoke(src, "-o", out, "--input-shape", shape))
    assert all(word in line for word in words), line
    assert not out.exists()


def test_model_failing_the_checker_is_one_line_exit_2_and_out_kept(tmp_path: Path) -> None:
    model = fixtures.flatten_after_global_pool()
    model.graph.node[1].input[0] = "undefined_value"
    src = save(model, tmp_path / "broken.onnx")
    out = tmp_path / "out.onnx"
    out.write_bytes(b"previous")
    line = one_error_line(invoke(src, "-o", out))
    assert "broken.onnx" in line and "ONNX checker" in line
    assert out.read_bytes() == b"previous"


def _flatten_in_wrong_order() -> Pass:
    """A deliberately wrong rewrite: Flatten -> Transpose (channels last) + Reshape."""

    def target(op, x):
        return op.Flatten(x, _allow_other_attributes=True)

    def replacement(op, x):
        return op.Reshape(op.Transpose(x, perm=[0, 2, 3, 1]), int64s(op, [1, -1]))

    return Pass(
        name="wrong_flatten",
        summary="test only: reorders the elements",
        rules=(RewriteRule(target, replacement, name="wrong_flatten"),),
    )


def test_pass_breaking_equality_is_named_left_out_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(passes, "REGISTRY", (_flatten_in_wrong_order(),))
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], axis=1),
        helper.make_node("Relu", ["f"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 18])],
    )
    src = save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), tmp_path / "f.onnx"
    )
    out = tmp_path / "out.onnx"
    result = invoke(src, "-o", out)
    line = one_error_line(result)
    assert "wrong_flatten" in line and "max |diff|" in line and "left out" in line
    assert "breaks-equality" in result.stdout  # the table is still printed
    written = onnx.load(str(out))  # complete, and without the pass
    assert [n.op_type for n in written.graph.node] == ["Flatten", "Relu"]


def test_missing_model_is_one_line_exit_2(tmp_path: Path) -> None:
    line = one_error_line(invoke(tmp_path / "none.onnx", "-o", tmp_path / "out.onnx"))
    assert "none.onnx" in line


def test_an_opset_15_retinaface_export_goes_to_one_partition(tmp_path: Path) -> None:
    """A team's export at opset 15 (issue 8): onnx's converter writes Softmax over the last axis
    as Flatten-Softmax-Reshape, and Flatten is not in MLProgram; the Flatten pass takes it."""
    from tests.conftest import write_landms_export

    source = ROOT / "weights" / "retinaface_mobilenet025.onnx"
    if not source.exists():
        pytest.fail(f"{source} is missing: run `make models` first")
    export = write_landms_export(source, tmp_path / "export15.onnx", opset=15)
    out = tmp_path / "export15.opt.onnx"
    result = invoke(export, "-o", out, "--input-shape", "input=1,3,384,640", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    simplified = record["stages"]["simplified"]["coverage"]["1.32"]["mlprogram"]
    assert [n["op_type"] for n in simplified["cpu_nodes"]] == ["Flatten"]
    assert record["targets"]["1.32"]["one_partition"] and record["targets"]["1.32"]["equal"]
    kept = [p["name"] for p in record["passes"] if p["status"] == "kept"]
    assert kept == ["flatten_to_reshape"]
