"""The zoo table's rendering (the measuring needs `make zoo`'s exported models, not run here)."""

from __future__ import annotations

from zoo.measure import FORMATS, VERSIONS
from zoo.table import cell_text, render


def cell(supported: int, nodes: int, partitions: int, share: float | None) -> dict:
    return {
        "nodes_in_graph": nodes,
        "nodes_supported": supported,
        "partitions": partitions,
        "mac_share": share,
        "macs_uncounted": 0,
    }


def cells(c: dict) -> dict:
    return {
        "graph_onnxruntime": "1.32.0",
        "cells": {v: dict.fromkeys(FORMATS, c) for v in VERSIONS},
    }


def optimize_run(out: dict | None, exit_code: int = 0, error: str = "") -> dict:
    record = None
    if out is not None:
        record = {
            "seconds": 12.34,
            "stages": {
                "out": {
                    "relative_diff": 3.2e-7,
                    "coverage": {v: dict.fromkeys(FORMATS, out) for v in VERSIONS},
                }
            },
        }
    return {
        "command": "python -m toolchain optimize ...",
        "exit_code": exit_code,
        "error": error,
        "wall_seconds": 15.0,
        "record": record,
    }


def zoo_record(name: str, entry: dict, optimize: str = "ran") -> dict:
    return {"onnxruntime": "1.32.0", "optimize": optimize, "models": {name: entry}}


def test_cell_text_rounds_the_share_down() -> None:
    assert cell_text(cell(282, 292, 8, 0.99996)) == "282/292 in 8, 99.99%"
    assert cell_text(cell(10, 10, 1, 1.0)) == "10/10 in 1, 100.00%"
    assert cell_text(cell(0, 3, 0, None)) == "0/3 in 0, -"
    assert cell_text(None) == "-"


def test_render_before_and_after() -> None:
    record = zoo_record(
        "mtl",
        {
            "dynamic": cells(cell(441, 514, 28, 0.9982)),
            "batch1": cells(cell(282, 292, 8, 0.9996)),
            "optimize": {
                "mlprogram": optimize_run(cell(290, 290, 1, 1.0)),
                "neuralnetwork": optimize_run(None, 2, "error: pass x breaks equality"),
            },
        },
    )
    lines = render(record).splitlines()
    assert lines[2] == (
        "| MTL | 1.23 | MLProgram | 441/514 in 28, 99.82% | 282/292 in 8, 99.96% | "
        "290/290 in 1, 100.00% | 3.2e-07 | 12.3 |"
    )
    assert lines[3] == (
        "| MTL | 1.23 | NeuralNetwork | 441/514 in 28, 99.82% | 282/292 in 8, 99.96% | "
        "failed: error: pass x breaks equality | - | 15.0 |"
    )
    assert len([line for line in lines if line.startswith("| MTL")]) == 4


def test_render_without_optimize_says_so() -> None:
    entry = {
        "dynamic": cells(cell(743, 855, 12, 1.0)),
        "batch1": cells(cell(656, 665, 4, 1.0)),
        "optimize": {},
    }
    record = zoo_record("star", entry, optimize="not available")
    text = render(record)
    assert (
        "| STAR | 1.32 | NeuralNetwork | 743/855 in 12, 100.00% | 656/665 in 4, 100.00% | - |"
        in text
    )
    assert "`toolchain optimize`: not available; the after columns are empty." in text
