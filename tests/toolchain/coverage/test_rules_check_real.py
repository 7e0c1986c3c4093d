"""`rules check` on the real macOS wheels from PyPI (downloaded once into the user cache).

The releases the tables were built from (spec §0: 1.22.1, 1.23.2, 1.24.4, 1.32.0) must come out
clean; so must the series mapped onto a table (1.25 onto 1.24, 1.30 and 1.31 onto 1.32); 1.28.0,
which no table models, against the 1.24 table below it, and the 1.22 table against 1.23.2 must not.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from retinaface_coreml_toolchain.cli import cli
from retinaface_coreml_toolchain.coverage.ep_binary import read_wheel
from retinaface_coreml_toolchain.coverage.ort_wheel import macos_wheel
from retinaface_coreml_toolchain.coverage.rules import TABLES
from retinaface_coreml_toolchain.coverage.rules_check import check_release, compare, render


@pytest.mark.parametrize("version", ["1.22.1", "1.23.2", "1.24.4", "1.32.0"])
def test_the_releases_the_tables_were_built_from_are_clean(version: str) -> None:
    check = check_release(version)
    assert check.table == version.rsplit(".", 1)[0]
    assert not check.stale, render(check.to_dict())


@pytest.mark.parametrize(
    ("version", "table"), [("1.25.0", "1.24"), ("1.30.0", "1.32"), ("1.31.0", "1.32")]
)
def test_a_series_mapped_onto_a_table_is_clean_against_it(version: str, table: str) -> None:
    check = check_release(version)
    assert check.table == table and check.predictor_accepts
    assert not check.stale, render(check.to_dict())


def test_1_28_against_the_1_24_table_names_what_changed() -> None:
    check = check_release("1.28.0")
    assert check.table == "1.24" and check.stale and not check.predictor_accepts
    diffs = {d.fact: d for d in check.diffs}
    assert diffs["builders"].new == (
        "gathernd",
        "identity",
        "logical",
        "quickgelu",
        "tile",
        "where",
    )
    assert "pad" in diffs["mlprogram"].new
    assert set(diffs["trivial"].new) == {"cast", "flatten", "identity", "reshape", "squeeze"} | {
        "tile",
        "transpose",
        "unary",
    }
    assert "Gather does not support scalar 'indices'" in diffs["messages"].gone
    assert "Gather with scalar 'indices' requires static 'data' shape" in diffs["messages"].new
    result = CliRunner().invoke(cli, ["rules", "check", "1.28.0"])
    assert result.exit_code == 1
    assert "error: the 1.24 rule table is stale for onnxruntime 1.28.0" in result.output


def test_the_1_22_table_against_the_1_23_binary_names_its_deltas() -> None:
    check = compare("1.23.2", TABLES[(1, 22)], read_wheel(macos_wheel("1.23.2")), wheel="1.23.2")
    diffs = {d.fact: d for d in check.diffs}
    assert diffs["builders"].clean and diffs["mlprogram"].clean
    # The external-initializer check and Softmax's static-shape rule went; Conv's shape checks came.
    assert "] has external initializers" in diffs["messages"].gone
    assert "Softmax input must have static shape for ONNX opset < 13" in diffs["messages"].new
    assert any("necessary to check for valid convolutions" in t for t in diffs["messages"].new)
