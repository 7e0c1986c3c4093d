"""The coverage pages in a real browser: Debian's headless chromium, driven over CDP (Playwright).

`make chromium` installs chromium (`make test` and `.ci/run` call it). Without it these tests
skip, except when REQUIRE_BROWSER=1 (`.ci/run` sets it): then a missing browser fails them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import pytest
from click.testing import CliRunner

from retinaface_coreml_toolchain.cli import cli
from tests.toolchain.coverage.coverage_graphs import BUILT_BUCKETS
from tests.toolchain.optimize import fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # CHROMIUM names another Chromium-family binary (GitHub's Ubuntu runners ship google-chrome;
    # their `chromium` package is a snap stub).
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        message = "no chromium: run `make chromium` (apt-get install chromium) or set CHROMIUM"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        # --no-sandbox: chromium refuses to run as root (CI) with its sandbox on.
        launched = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


def open_page(browser: Any, path: Path) -> Any:
    """Open ``path`` from disk; fail on any request that is not that file, or a JS error."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda r: r.url != path.as_uri() and errors.append(f"request {r.url}"))
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready]")
    assert errors == []
    return page


DRAWN_CPU = "(v) => [...v.querySelectorAll('.node.cpu')].map(g => g.dataset.name)"


def cpu_names(cov: dict[str, Any]) -> list[str]:
    """The nodes the JSON report leaves on the CPU: rejected, plus dropped trivial groups."""
    dropped = [name for group in cov["dropped_trivial_groups"] for name in group]
    return sorted([node["name"] for node in cov["rejected"]] + dropped)


def check_view(page: Any, index: int, cov: dict[str, Any]) -> None:
    """Drawn nodes == graph nodes; CPU nodes == the report's; a click shows the rule."""
    view = page.locator("section.view").nth(index)
    count = "(v) => [...v.querySelectorAll('.node')].reduce((s, g) => s + +g.dataset.count, 0)"
    # As it opens (chains maybe collapsed), the drawn units hold every node once.
    assert view.evaluate(count) == cov["nodes_in_graph"]
    if view.locator("button[data-action=toggle]").inner_text() == "Expand all chains":
        view.locator("button[data-action=toggle]").click()
    assert view.locator(".node").count() == cov["nodes_in_graph"]
    drawn_cpu = view.evaluate(
        "(v) => [...v.querySelectorAll('.node.cpu')].map(g => g.dataset.name)"
    )
    assert sorted(drawn_cpu) == cpu_names(cov)
    assert view.evaluate("(v) => getComputedStyle(v.querySelector('.node rect')).fill") != ""
    for rejected in cov["rejected"][:3]:
        # Bring the node into sight from the CPU list, then click the node itself.
        view.locator(".cpu-list a", has_text=rejected["name"]).first.click()
        view.locator(f'.node.cpu[data-name="{rejected["name"]}"]').click()
        detail = view.locator(".detail")
        assert rejected["op_type"] in detail.locator("h3").first.inner_text()
        assert detail.locator("[data-role=reason]").inner_text().startswith(rejected["reason"])
        assert "inputs" in detail.inner_text()


def coverage_with_page(tmp_path: Path, model: Path, *extra: str) -> tuple[Path, dict[str, Any]]:
    page = tmp_path / f"{model.stem}.html"
    result = CliRunner().invoke(
        cli, ["coverage", str(model), "--json", "--html", str(page), *extra]
    )
    assert result.exit_code == 0, result.output
    return page, json.loads(result.stdout)


def test_source_retinaface_page(browser: Any, tmp_path: Path, source_model: Path) -> None:
    page_path, record = coverage_with_page(tmp_path, source_model, "--ort-version", "1.32")
    page = open_page(browser, page_path)
    formats = [page.locator("section.view").nth(i).get_attribute("data-title") for i in (0, 1)]
    assert formats == ["MLProgram", "NeuralNetwork"]
    for index, fmt in enumerate(("mlprogram", "neuralnetwork")):
        check_view(page, index, record["formats"][fmt])
    assert record["formats"]["mlprogram"]["partitions"] == 4  # 144 nodes, 20 on the CPU
    stats = page.locator("section.view").first.locator(".stats").inner_text()
    assert "nodes 144" in stats and "partitions 4" in stats and "CPU nodes 20" in stats


def test_bucket_page_of_the_build(browser: Any, tmp_path: Path, bucket_640: Path) -> None:
    built = BUILT_BUCKETS / "640x640.onnx"
    model = built if built.is_file() else bucket_640
    page_path, record = coverage_with_page(tmp_path, model, "--format", "mlprogram")
    page = open_page(browser, page_path)
    cov = record["formats"]["mlprogram"]
    assert (cov["nodes_in_graph"], cov["partitions"], cov["rejected"]) == (126, 1, [])
    check_view(page, 0, cov)
    assert page.locator(".node.cpu").count() == 0
    assert page.locator(".edge.crossing").count() == 0


@pytest.mark.parametrize(
    ("builder", "version"),
    [
        (fixtures.flatten_after_global_pool, "1.32"),
        (fixtures.einsum_similarity, "1.23"),
        (fixtures.reduce_l2_normalize, "1.32"),
        (fixtures.coordconv_boundary, "1.32"),
    ],
)
def test_generated_fixture_pages(browser: Any, tmp_path: Path, builder, version: str) -> None:
    model = tmp_path / f"{builder.__name__}.onnx"
    onnx.save(builder(), str(model))
    page_path, record = coverage_with_page(tmp_path, model, "--ort-version", version)
    page = open_page(browser, page_path)
    assert record["formats"]["mlprogram"]["rejected"], "the fixture must leave a node on CPU"
    for index, fmt in enumerate(("mlprogram", "neuralnetwork")):
        check_view(page, index, record["formats"][fmt])
    assert page.locator(".edge.crossing").count() > 0


def test_optimize_page_shows_before_and_after(browser: Any, tmp_path: Path) -> None:
    model = tmp_path / "in.onnx"
    onnx.save(fixtures.flatten_after_global_pool(), str(model))
    page_path = tmp_path / "optimize.html"
    result = CliRunner().invoke(
        cli,
        ["optimize", str(model), "-o", str(tmp_path / "out.onnx"), "--ort-version", "1.32",
         "--json", "--html", str(page_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    page = open_page(browser, page_path)
    titles = [page.locator("section.view").nth(i).get_attribute("data-title") for i in (0, 1)]
    assert titles == ["before: in.onnx", "after: out.onnx"]
    before = record["stages"]["in"]["coverage"]["1.32"]["mlprogram"]
    after = record["stages"]["out"]["coverage"]["1.32"]["mlprogram"]
    for index, cell in enumerate((before, after)):
        view = page.locator("section.view").nth(index)
        assert view.locator(".node").count() == cell["nodes_in_graph"]
        drawn = view.evaluate(
            "(v) => [...v.querySelectorAll('.node.cpu')].map(g => g.dataset.name)"
        )
        assert sorted(drawn) == sorted(n["name"] for n in cell["cpu_nodes"])
    assert before["cpu_nodes"] and not after["cpu_nodes"]
    # The Flatten the pass replaced is marked before, its Reshape after.
    assert page.locator("section.view").nth(0).locator(".node.marked").count() >= 1
    assert page.locator("section.view").nth(1).locator(".node.marked").count() >= 1
