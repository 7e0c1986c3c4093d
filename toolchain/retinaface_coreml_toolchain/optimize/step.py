"""`toolchain optimize`: IN.onnx -> OUT.onnx, with the before/after record."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retinaface_coreml_toolchain.coverage.api import FORMATS
from retinaface_coreml_toolchain.errors import ModelError
from retinaface_coreml_toolchain.files import write_bytes
from retinaface_coreml_toolchain.optimize import passes
from retinaface_coreml_toolchain.optimize.driver import OptimizeOptions, optimize_model
from retinaface_coreml_toolchain.optimize.errors import CheckerError
from retinaface_coreml_toolchain.optimize.report import SCHEMA_VERSION, stage_record, targets
from retinaface_coreml_toolchain.optimize.shapes import Shape
from retinaface_coreml_toolchain.steplog import step


@dataclass(frozen=True, kw_only=True)
class OptimizeRequest:
    model: Path
    output: Path
    input_shapes: Mapping[str, Shape] = field(default_factory=dict)
    ort_versions: tuple[str, ...] = ()  # empty: the installed onnxruntime's table
    model_format: str = "mlprogram"
    html: Path | None = None  # also write the before/after picture here


def ort_versions(requested: tuple[str, ...]) -> tuple[str, ...]:
    """Canonical table versions, e.g. ``("1.23.2", "1.32")`` -> ``("1.23", "1.32")``."""
    import onnxruntime

    from retinaface_coreml_toolchain.coverage.rules import default_version, table_for

    wanted = requested or (default_version(onnxruntime.__version__),)
    return tuple(dict.fromkeys(table_for(v).version for v in wanted))


def load_checked(path: Path):
    """The model at ``path``, after the ONNX checker; one-line errors otherwise."""
    import onnx

    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelError(f"{path}: not a readable ONNX model ({exc})") from exc
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        raise CheckerError(
            f"{path}: fails the ONNX checker: {first}; fix or re-export the model"
        ) from exc
    return model


def optimize_file(request: OptimizeRequest) -> dict[str, Any]:
    """Optimize ``request.model`` into ``request.output`` (atomic); return the record."""
    from retinaface_coreml_toolchain.optimize.predict import predict

    source = load_checked(request.model)
    versions = ort_versions(request.ort_versions)
    options = OptimizeOptions(
        input_shapes=dict(request.input_shapes),
        ort_versions=versions,
        model_format=request.model_format,
        passes=passes.REGISTRY,  # read at call time: tests hand in a registry of their own
    )
    with step(f"optimize {request.model.name}"):
        started = time.perf_counter()
        optimized, checker = optimize_model(source, options, name=str(request.model))
        seconds = time.perf_counter() - started
        simplified_diffs = checker.diffs(optimized.simplified)
        out_diffs = checker.diffs(optimized.model) if optimized.changed else simplified_diffs
        models = {"in": source, "simplified": optimized.simplified, "out": optimized.model}
        diffs = {"in": (), "simplified": simplified_diffs, "out": out_diffs}
        predictions = {name: predict(model, versions, FORMATS) for name, model in models.items()}
        stages = {
            name: stage_record(
                nodes=len(model.graph.node),
                prediction=predictions[name],
                diffs=diffs[name],
                versions=versions,
                formats=FORMATS,
            )
            for name, model in models.items()
        }
        write_bytes(request.output, optimized.model.SerializeToString())
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": request.model.name,
        "output": request.output.name,
        "input_shapes": {name: list(s) for name, s in optimized.shapes.items()},
        "ort_versions": list(versions),
        "model_format": request.model_format,
        "check_inputs": options.check_inputs,
        "tolerance": options.tolerance,
        "seconds": round(seconds, 3),
        "stages": stages,
        "passes": [o.to_dict() for o in optimized.outcomes],
    }
    record["targets"] = targets(record)
    if request.html is not None:
        from retinaface_coreml_toolchain.coverage.html import write_optimize_page

        write_optimize_page(
            request.html, record, before=predictions["in"], after=predictions["out"]
        )
    return record
