"""The coverage page without a browser: embedded record, chains, the --html path checks."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner
from onnx import helper

from retinaface_coreml_toolchain.cli import cli
from retinaface_coreml_toolchain.coverage.html import CPU, MIN_CHAIN, _units
from tests.toolchain.coverage.coverage_graphs import F, make_graph
from tests.toolchain.optimize import fixtures


def embedded(page: Path) -> dict:
    """The JSON the page draws from."""
    text = page.read_text()
    found = re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)
    assert found is not None
    return json.loads(found.group(1).replace("<\\/", "</"))


def test_page_embeds_the_json_record_and_one_node_per_graph_node(
    tmp_path: Path, source_model: Path
) -> None:
    page = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli, ["coverage", str(source_model), "--ort-version", "1.32", "--json", "--html", str(page)]
    )
    assert result.exit_code == 0, result.output
    data = embedded(page)
    assert data["record"] == json.loads(result.stdout)
    for view in data["views"]:
        cov = data["record"]["formats"][view["format"]]
        assert len(view["nodes"]) == len(view["full"]["xy"]) == cov["nodes_in_graph"] == 144
        assert sorted(i for unit in view["units"] for i in unit) == list(range(144))
        assert len(view["collapsed"]["xy"]) == len(view["units"]) < 144
    text = page.read_text()
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")  # a namespace name
    assert "https://" not in text and "<link" not in text and "src=" not in text


def test_chains_stop_at_partition_boundaries_and_branches() -> None:
    # a -> b -> c -> d -> e with d on the CPU; b also feeds f.
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="a"),
        helper.make_node("Relu", ["a"], ["b"], name="b"),
        helper.make_node("Relu", ["b"], ["c"], name="c"),
        helper.make_node("Relu", ["c"], ["d"], name="d"),
        helper.make_node("Relu", ["d"], ["e"], name="e"),
        helper.make_node("Relu", ["e"], ["f"], name="f"),
        helper.make_node("Relu", ["f"], ["g"], name="g"),
    ]
    graph = make_graph(nodes, [("x", F, [1, 4])], [("g", F, [1, 4])])
    assert _units(graph, [0, 0, 0, CPU, 1, 1, 1]) == [[0, 1, 2], [3], [4, 5, 6]]
    assert _units(graph, [0, 0, 1, 1, 1, 1, 1]) == [[0], [1], [2, 3, 4, 5, 6]]
    assert MIN_CHAIN == 3


def test_missing_html_folder_is_one_line_exit_2_before_analysis(tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "report.html"
    # The model does not exist either: the --html check must come first.
    result = CliRunner().invoke(cli, ["coverage", str(tmp_path / "x.onnx"), "--html", str(target)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {target}: folder {target.parent} does not exist; create it or pick another\n"
    )
    assert not target.parent.exists()


def test_html_under_a_file_is_one_line_exit_2(tmp_path: Path, source_model: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = blocker / "report.html"
    result = CliRunner().invoke(cli, ["coverage", str(source_model), "--html", str(target)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "does not exist" in result.stderr
    assert "ORT would log" not in result.stdout  # nothing analysed


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_read_only_html_folder_is_one_line_exit_2(tmp_path: Path, source_model: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    result = CliRunner().invoke(
        cli, ["coverage", str(source_model), "--html", str(folder / "r.html")]
    )
    assert result.exit_code == 2
    assert result.stderr.endswith("is not writable; pick another folder\n")
    assert list(folder.iterdir()) == []


def test_optimize_html_checks_the_folder_before_writing_anything(tmp_path: Path) -> None:
    model = tmp_path / "in.onnx"
    onnx.save(fixtures.flatten_after_global_pool(), str(model))
    out = tmp_path / "out.onnx"
    target = tmp_path / "missing" / "r.html"
    result = CliRunner().invoke(
        cli, ["optimize", str(model), "-o", str(out), "--html", str(target)]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {target}: folder ")
    assert not out.exists()


def test_build_writes_one_page_per_model() -> None:
    from tests.toolchain.coverage.coverage_graphs import ROOT

    built = ROOT / "models" / "build" / "retinaface" / "coverage"
    buckets = sorted(p.stem for p in built.glob("*.json"))
    if not buckets:
        pytest.skip("no build yet: `make models` writes models/build/retinaface/coverage")
    pages = sorted(p.name for p in built.glob("*.html"))
    assert pages == sorted(["retinaface.html", *(f"retinaface-{b}.html" for b in buckets)])
    for bucket in buckets:
        data = embedded(built / f"retinaface-{bucket}.html")
        by_series = json.loads((built / f"{bucket}.json").read_text())
        assert data["record"]["formats"] == by_series[data["record"]["rules"]]
