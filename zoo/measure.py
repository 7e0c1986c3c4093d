"""Measure the zoo models: predicted CoreML coverage before and after `toolchain optimize`.

Runs in the toolchain's venv (``.venv``), on the files ``zoo.export`` wrote. Per model, three
stages, each judged under ORT 1.23 and 1.32 rules in both CoreML formats:
- ``dynamic``: the export as the app ships it (dynamic batch);
- ``batch1``: the batch fixed to 1 and onnxsim run, nothing else (issue 9's "before");
- ``optimize``: ``python -m toolchain optimize IN -o OUT --json``, once per deciding format;
  its own record gives OUT's figures, the numerical check and the time.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("zoo.measure")

MODELS = ("mtl", "star")  # file stems written by zoo.export
VERSIONS = ("1.23", "1.32")
FORMATS = ("mlprogram", "neuralnetwork")


def fix_batch_and_simplify(source: Path, target: Path) -> dict[str, list[int]]:
    """Write ``source`` with every dynamic input dimension set to 1, simplified by onnxsim."""
    import onnx
    import onnxsim

    from retinaface_coreml_toolchain.errors import ModelError
    from retinaface_coreml_toolchain.files import write_bytes

    model = onnx.load(str(source))
    shapes = {
        i.name: [d.dim_value if d.HasField("dim_value") else 1 for d in _dims(i)]
        for i in model.graph.input
    }
    simplified, ok = onnxsim.simplify(model, overwrite_input_shapes=shapes)
    if not ok:
        raise ModelError(f"{source}: onnxsim could not verify the batch-1 model")
    onnx.checker.check_model(simplified)
    write_bytes(target, simplified.SerializeToString(deterministic=True))
    return shapes


def _dims(value_info: Any) -> Any:
    return value_info.type.tensor_type.shape.dim


def coverage_cells(model: Path) -> dict[str, Any]:
    """Per ORT version and format: nodes, supported, partitions, MAC share (one level-1 graph)."""
    from retinaface_coreml_toolchain.coverage.api import analyse
    from retinaface_coreml_toolchain.coverage.graph import load_graph
    from retinaface_coreml_toolchain.coverage.macs import count_macs
    from retinaface_coreml_toolchain.coverage.rules import table_for

    graph = load_graph(model)
    macs = count_macs(graph)
    cells: dict[str, Any] = {}
    for version in VERSIONS:
        cells[version] = {}
        for fmt in FORMATS:
            cov = analyse(
                graph, table_for(version), model_format=fmt, require_static_shapes=False, macs=macs
            )
            share = cov.macs_share
            cells[version][fmt] = {
                "nodes_in_graph": cov.nodes_in_graph,
                "nodes_supported": cov.nodes_supported,
                "partitions": len(cov.partitions),
                "mac_share": None if share is None else round(share, 6),
                "macs_uncounted": len(macs.uncounted),
            }
    return {"graph_onnxruntime": graph.produced_by_ort, "cells": cells}


def optimize_available() -> bool:
    """True once the toolchain has an ``optimize`` command."""
    probe = [sys.executable, "-m", "retinaface_coreml_toolchain", "optimize", "--help"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def run_optimize(source: Path, target: Path, model_format: str) -> dict[str, Any]:
    """``toolchain optimize`` as a user runs it; its --json record, exit code and wall time."""
    command = [
        sys.executable,
        "-m",
        "retinaface_coreml_toolchain",
        "optimize",
        str(source),
        "-o",
        str(target),
    ]
    for version in VERSIONS:
        command += ["--ort-version", version]
    command += ["--format", model_format, "--json"]
    log.info("%s", " ".join(command[1:]))
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    try:
        record = json.loads(done.stdout) if done.stdout.strip() else None
    except json.JSONDecodeError:
        record = None
    error = done.stderr.strip().splitlines()[-1] if done.returncode and done.stderr.strip() else ""
    return {
        "command": " ".join(["python", *command[1:]]),
        "exit_code": done.returncode,
        "error": error,
        "wall_seconds": round(wall, 1),
        "record": record,
    }


def measure(zoo_dir: Path, *, optimize: bool = True) -> dict[str, Any]:
    """The whole zoo record (rendered by zoo.table)."""
    import onnxruntime

    can_optimize = optimize and optimize_available()
    models: dict[str, Any] = {}
    for name in MODELS:
        source = zoo_dir / f"{name}.onnx"
        if not source.is_file():
            raise FileNotFoundError(f"{source}: missing; export it with `make zoo`")
        batch1 = zoo_dir / f"{name}_b1.onnx"
        shapes = fix_batch_and_simplify(source, batch1)
        entry: dict[str, Any] = {
            "input_shapes": shapes,
            "dynamic": coverage_cells(source),
            "batch1": coverage_cells(batch1),
            "optimize": {},
        }
        if can_optimize:
            for fmt in FORMATS:
                target = zoo_dir / f"{name}_opt_{fmt}.onnx"
                entry["optimize"][fmt] = run_optimize(source, target, fmt)
        models[name] = entry
    return {
        "onnxruntime": onnxruntime.__version__,
        "optimize": "ran" if can_optimize else ("skipped" if not optimize else "not available"),
        "models": models,
    }
