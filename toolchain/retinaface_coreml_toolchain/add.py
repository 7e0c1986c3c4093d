"""`toolchain add NAME SOURCE.onnx --input NAME=SHAPE ...`: write models/NAME.toml.

Reads what the model says (input and output names, dtypes, dynamic dims), fixes the dynamic
dims from ``--input`` (an input named again makes one more bucket), predicts CoreML coverage as
exported and after optimize under every gated ORT series, and writes the recipe atomically.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retinaface_coreml_toolchain.errors import RecipeError
from retinaface_coreml_toolchain.files import write_bytes
from retinaface_coreml_toolchain.recipe import MODEL_FORMAT_OPTION, NAME, RECIPE_DIR, recipe_paths

DTYPES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 9: "bool", 10: "float16"}


@dataclass(frozen=True, kw_only=True)
class AddRequest:
    root: Path
    name: str
    source: Path
    inputs: tuple[str, ...] = ()
    max_partitions: int = 1
    model_format: str = "mlprogram"
    ort_versions: tuple[str, ...] = ()
    batch_independent: bool = False
    recipe_dir: Path | None = None


@dataclass(frozen=True, kw_only=True)
class AddResult:
    path: Path
    inputs: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    buckets: dict[str, dict[str, tuple[int, ...]]]
    versions: tuple[str, ...]
    model_format: str
    before: dict[str, tuple[int, int, int]]  # series -> (supported, nodes, partitions)
    after: dict[str, dict[str, tuple[int, int, int]]] = field(default_factory=dict)


def add_recipe(request: AddRequest) -> AddResult:
    """Check everything, predict coverage, then write the recipe (nothing is written on error)."""
    from retinaface_coreml_toolchain.optimize.step import load_checked

    folder = request.recipe_dir or request.root / RECIPE_DIR
    target = Path(folder) / f"{request.name}.toml"
    if not NAME.fullmatch(request.name):
        raise RecipeError(f"{target}: name {request.name!r} must match {NAME.pattern}")
    existing = recipe_paths(request.root, (Path(folder),)).get(request.name)
    if existing is not None or target.exists():
        raise RecipeError(
            f"{existing or target}: a recipe named {request.name!r} exists; pick another "
            "name or edit that file"
        )
    model = load_checked(request.source)
    inputs, outputs = _describe(model)
    buckets = _buckets(request, model, inputs)
    versions = _versions(request)
    before, after = _predict(request, model, buckets, versions)
    text = recipe_text(request, inputs, outputs, buckets)
    write_bytes(target, text.encode())
    return AddResult(
        path=target,
        inputs=inputs,
        outputs=outputs,
        buckets=buckets,
        versions=versions,
        model_format=request.model_format,
        before=before,
        after=after,
    )


def _describe(model) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """name -> {dtype, dims} for the real inputs and the outputs (None or a name: dynamic)."""
    constants = {init.name for init in model.graph.initializer}

    def dims(info) -> list[Any]:
        return [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in info.type.tensor_type.shape.dim
        ]

    def record(info) -> dict[str, Any]:
        elem = info.type.tensor_type.elem_type
        return {"dtype": DTYPES.get(elem, str(elem)), "dims": dims(info)}

    inputs = {i.name: record(i) for i in model.graph.input if i.name not in constants}
    outputs = {o.name: record(o) for o in model.graph.output}
    return inputs, outputs


def _buckets(request: AddRequest, model, inputs) -> dict[str, dict[str, tuple[int, ...]]]:
    """bucket name -> input shapes; the k-th ``--input`` of a name goes to bucket k."""
    from retinaface_coreml_toolchain.optimize.errors import InputShapeError
    from retinaface_coreml_toolchain.optimize.shapes import parse_input_shape, resolve_shapes

    given: dict[str, list[tuple[int, ...]]] = {}
    for text in request.inputs:
        try:
            name, shape = parse_input_shape(text)
        except InputShapeError:
            raise InputShapeError(
                f"--input '{text}' is not NAME=D1,D2,...; give positive dims, "
                "e.g. --input input=1,3,224,224"
            ) from None
        given.setdefault(name, []).append(shape)
    for name in given:
        if name not in inputs:
            raise InputShapeError(
                f"{request.source}: no input named {name!r} (inputs: {', '.join(inputs)}); "
                "fix the name in --input"
            )
    for name, info in inputs.items():
        if name not in given and any(not isinstance(d, int) for d in info["dims"]):
            raise InputShapeError(
                f"{request.source}: input {name!r} has dynamic dims {_fmt(info['dims'])}; "
                f"give --input {name}=D1,D2,..."
            )
    count = max((len(v) for v in given.values()), default=1)
    if any(len(v) not in (1, count) for v in given.values()):
        raise InputShapeError(
            f"{request.source}: give each input once, or {count} times (one shape per bucket)"
        )
    buckets: dict[str, dict[str, tuple[int, ...]]] = {}
    for k in range(count):
        wanted = {name: shapes[k if len(shapes) > 1 else 0] for name, shapes in given.items()}
        shapes = resolve_shapes(model, wanted, source=str(request.source))
        first = next(iter(shapes.values()))
        name = "x".join(map(str, first))
        buckets[name if name not in buckets else f"{name}_{k}"] = shapes
    return buckets


def _versions(request: AddRequest) -> tuple[str, ...]:
    from retinaface_coreml_toolchain.coverage.rules import table_for
    from retinaface_coreml_toolchain.recipe import admitted_versions

    if request.ort_versions:
        return tuple(dict.fromkeys(table_for(v).version for v in request.ort_versions))
    return admitted_versions(request.root)


def _predict(request: AddRequest, model, buckets, versions):
    """Coverage as exported, and of each bucket after optimize, per gated series."""
    from retinaface_coreml_toolchain.optimize.driver import OptimizeOptions, optimize_model
    from retinaface_coreml_toolchain.optimize.predict import predict

    fmt = (request.model_format,)

    def figures(prediction) -> dict[str, tuple[int, int, int]]:
        result = {}
        for series in versions:
            cov = prediction.coverages[(series, request.model_format)]
            result[series] = (cov.nodes_supported, cov.nodes_in_graph, len(cov.partitions))
        return result

    before = figures(predict(model, versions, fmt))
    after = {}
    for name, shapes in buckets.items():
        options = OptimizeOptions(
            input_shapes=shapes, ort_versions=versions, model_format=request.model_format
        )
        optimized, _ = optimize_model(model, options, name=f"{request.source} bucket {name}")
        after[name] = figures(predict(optimized.model, versions, fmt))
    return before, after


def _source_path(request: AddRequest) -> str:
    """The source as the recipe names it: relative to the project root when inside it."""
    path = request.source.resolve()
    try:
        return path.relative_to(request.root.resolve()).as_posix()
    except ValueError:
        return os.path.abspath(path)


def _fmt(dims) -> str:
    return "[" + ", ".join("?" if not isinstance(d, int) else str(d) for d in dims) + "]"


def recipe_text(request: AddRequest, inputs, outputs, buckets) -> str:
    """The recipe as TOML, every key with a comment (README: "Package your own models")."""
    digest = hashlib.sha256(request.source.read_bytes()).hexdigest()
    lines = [
        f"# Recipe for {request.name}, written by `toolchain add`; every key: README",
        '# "Package your own models". The model, as read from the file:',
    ]
    for kind, items in (("input", inputs), ("output", outputs)):
        for name, info in items.items():
            lines.append(f"#   {kind} {name}: {info['dtype']} {_fmt(info['dims'])}")
    lines += [
        "",
        "# Axis 0 of every input and output is a batch whose items do not interact (validated).",
        f"batch_independent = {str(request.batch_independent).lower()}",
        "# Try `toolchain optimize`'s rewrite passes on each bucket.",
        "optimize = true",
        "",
        "[source]",
        'kind = "path"',
        f'path = "{_source_path(request)}"',
        f'sha256 = "{digest}"',
        "",
        "# One static shape set per bucket.",
    ]
    for name, shapes in buckets.items():
        fixed = ", ".join(f"{k} = [{', '.join(map(str, s))}]" for k, s in shapes.items())
        lines += ["[[buckets]]", f'name = "{name}"', f"inputs = {{ {fixed} }}", ""]
    gate_versions = ", ".join(f'"{v}"' for v in _versions(request)) if request.ort_versions else ""
    lines += [
        "[validate]",
        "# Seeded uniform random tensors in range through the source and each bucket (ORT CPU).",
        'inputs = "random"',
        "seed = 0",
        "count = 2",
        "range = [0.0, 1.0]",
        "# A bucket passes when its largest |diff| is within max_abs_diff, or within",
        "# max_rel_diff of the output's largest |value|.",
        "max_abs_diff = 1e-4",
        "max_rel_diff = 1e-4",
        "",
        "[gate]",
        f'formats = ["{request.model_format}"]',
        "# ORT series the buckets are gated under; none given: every one the wheel admits.",
        *([f"ort_versions = [{gate_versions}]"] if gate_versions else []),
        "min_coverage = 1.0",
        f"max_partitions = {request.max_partitions}",
        "",
        "[coreml]",
        f'ModelFormat = "{MODEL_FORMAT_OPTION[request.model_format]}"',
        'MLComputeUnits = "ALL"',
        "",
    ]
    return "\n".join(lines)


def render(result: AddResult) -> str:
    """The file written, then predicted coverage per series: as exported, after optimize."""
    lines = [f"wrote {result.path}"]
    for kind, items in (("input", result.inputs), ("output", result.outputs)):
        for name, info in items.items():
            lines.append(f"  {kind} {name}: {info['dtype']} {_fmt(info['dims'])}")
    fmt = MODEL_FORMAT_OPTION[result.model_format]
    lines.append(f"predicted CoreML coverage ({fmt}): supported/nodes, partitions")
    header = f"  {'ORT':<5} {'as exported':>16}"
    header += "".join(f" {'after optimize ' + b:>28}" for b in result.after)
    lines.append(header)
    for series in result.versions:
        s, n, p = result.before[series]
        row = f"  {series:<5} {f'{s}/{n}, {p}':>16}"
        for per in result.after.values():
            s, n, p = per[series]
            row += f" {f'{s}/{n}, {p}':>28}"
        lines.append(row)
    return "\n".join(lines)
