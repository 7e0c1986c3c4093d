"""How long the coverage page of an 855-node graph takes to build and to open (target: < 2 s).

Builds a STAR-sized model with onnx.helper: residual blocks (Conv, Relu, Conv, Add, Relu), a
skip connection across blocks every 8 blocks, and a Floor (no CoreML builder) every 20 blocks,
so the page has many partitions and CPU nodes. Times `coverage --html` (level-1 graph, rules,
layout, page) once, then opens the page in headless chromium (Playwright over CDP) RUNS times:
from navigation to the page's ready mark, as it opens (chains collapsed) and after "Expand all
chains" (every node drawn). Run with ``python benchmarks/html_open.py`` after `make chromium`.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from retinaface_coreml_toolchain.coverage.api import CoverageRequest, run_coverage
from retinaface_coreml_toolchain.coverage.html import write_report_page

BLOCKS = 171  # 5 nodes each: 855
RUNS = 5
LIMIT_S = 2.0


def build_model(path: Path) -> None:
    rng = np.random.default_rng(0)
    nodes, inits, prev, skip = [], [], "input", "input"
    for b in range(BLOCKS):
        for k in (0, 1):
            w = numpy_helper.from_array(rng.standard_normal((8, 8, 3, 3), np.float32), f"w{b}_{k}")
            inits.append(w)
        op = "Floor" if b % 20 == 19 else "Relu"
        other = skip if b % 8 == 7 else prev
        nodes += [
            helper.make_node(
                "Conv", [prev, f"w{b}_0"], [f"a{b}"], name=f"b{b}/conv1", pads=[1] * 4
            ),
            helper.make_node("Relu", [f"a{b}"], [f"r{b}"], name=f"b{b}/relu1"),
            helper.make_node(
                "Conv", [f"r{b}", f"w{b}_1"], [f"c{b}"], name=f"b{b}/conv2", pads=[1] * 4
            ),
            helper.make_node("Add", [f"c{b}", other], [f"s{b}"], name=f"b{b}/add"),
            helper.make_node(op, [f"s{b}"], [f"o{b}"], name=f"b{b}/{op.lower()}"),
        ]
        if b % 8 == 0:
            skip = prev
        prev = f"o{b}"
    graph = helper.make_graph(
        nodes,
        "star_sized",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 8, 64, 64])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, 8, 64, 64])],
        initializer=inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def open_times(page_path: Path, chromium: str) -> tuple[list[float], list[float], list[float], int]:
    from playwright.sync_api import sync_playwright

    opened, expanded, in_page = [], [], []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for _ in range(RUNS):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            started = time.perf_counter()
            page.goto(page_path.as_uri())
            page.wait_for_selector("body[data-ready]")
            opened.append(time.perf_counter() - started)
            # The page's own mark: performance.now() when drawn (ms since navigation start).
            in_page.append(int(page.evaluate("document.body.dataset.ready")) / 1000)
            started = time.perf_counter()
            page.locator("button[data-action=toggle]").first.click()
            drawn = page.locator("section.view").first.locator(".node").count()
            expanded.append(time.perf_counter() - started)
            page.close()
        browser.close()
    return opened, in_page, expanded, drawn


def main() -> int:
    chromium = shutil.which("chromium")
    if chromium is None:
        print("no chromium: run `make chromium`")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        model, page = Path(tmp) / "star_sized.onnx", Path(tmp) / "star_sized.html"
        build_model(model)
        started = time.perf_counter()
        report = run_coverage(CoverageRequest(model=model, ort_version="1.32"))
        analysed = time.perf_counter() - started
        write_report_page(page, report)
        built = time.perf_counter() - started
        cov = report.coverages[0]
        opened, in_page, expanded, drawn = open_times(page, chromium)
        print(
            f"graph: {cov.nodes_in_graph} nodes, {len(cov.partitions)} partitions, "
            f"{len(cov.rejected)} CPU; page {page.stat().st_size / 1e6:.2f} MB"
        )
        print(f"coverage --html: analysis {analysed:.2f} s, with layout and page {built:.2f} s")
        print(f"open in chromium (median of {RUNS}): {statistics.median(opened):.2f} s "
              f"(min {min(opened):.2f}, max {max(opened):.2f})")  # fmt: skip
        print(f"  in the page, navigation start to drawn: {statistics.median(in_page):.2f} s")
        print(
            f"expand all chains ({drawn} nodes drawn), median: {statistics.median(expanded):.2f} s"
        )
    return 0 if statistics.median(opened) < LIMIT_S else 1


if __name__ == "__main__":
    sys.exit(main())
