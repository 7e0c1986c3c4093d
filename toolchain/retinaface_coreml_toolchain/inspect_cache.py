"""`toolchain inspect-cache`: read each cached CoreML model's spec and check it against its bucket.

Runs on any OS: coremltools parses the ``.mlmodel`` protobuf (inside an ML Package for
MLProgram) without Core ML itself. For each ``<ort>/<macOS>/<digest>/<key>/`` entry it finds
the partition folders ORT wrote (``<id>_<static|dynamic>_<mlprogram|nn>/model``, spec §5.3) and
compares inputs, outputs, shapes and dtypes with the bucket's ONNX model; the spec version must
be loadable on the entry's macOS major.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError

from retinaface_coreml_toolchain.errors import GateFailed
from retinaface_coreml_toolchain.recipe import Recipe

# Core ML specification version per macOS major (coremltools `_SPECIFICATION_VERSION_IOS_*`:
# iOS 16 = macOS 13 -> 7, iOS 17 = macOS 14 -> 8, iOS 18 = macOS 15 -> 9, 26 -> 10).
MAX_SPEC_VERSION = {"13": 7, "14": 8, "15": 9, "26": 10}


@dataclass(frozen=True, kw_only=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str

    def __str__(self) -> str:
        """e.g. ``loc[1,10080,4]``; the dtype is shown when it is not float32."""
        dims = ",".join(str(d) for d in self.shape)
        return f"{self.name}[{dims}]" + ("" if self.dtype == "float32" else f":{self.dtype}")


@dataclass(frozen=True, kw_only=True)
class CachedModel:
    """One partition model of one entry, e.g. entry ``1.32.0/14/<digest>/<key>``."""

    entry: str
    bucket: str | None
    partition: str
    spec_version: int | None
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    problems: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class InspectResult:
    root: Path
    models: tuple[CachedModel, ...]

    @property
    def problems(self) -> list[str]:
        return [f"{m.entry}/{m.partition}: {p}" for m in self.models for p in m.problems]

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "models": [
                {
                    **asdict(m),
                    "inputs": [asdict(t) for t in m.inputs],
                    "outputs": [asdict(t) for t in m.outputs],
                }
                for m in self.models
            ],
            "problems": self.problems,
        }


def inspect_cache(recipe: Recipe, root: Path) -> InspectResult:
    """Check every entry below ``root`` (a ``models/build/coreml`` or a user cache root)."""
    expected = _bucket_io(recipe)
    # <ort>/<macOS major>/<digest>/<key>: skip temp dirs (".build-...") and anything else.
    entries = sorted(
        p
        for p in root.glob("*/*/*/*")
        if p.is_dir()
        and p.parent.parent.name.isdigit()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    models = []
    for entry in entries:
        bucket = expected.get(entry.name)
        partitions = sorted(p for p in entry.iterdir() if (p / "model").exists())
        if not partitions:
            partitions = [entry / "-"]  # one row saying so
        for folder in partitions:
            models.append(
                _check_model(
                    entry=entry.relative_to(root).as_posix(),
                    folder=folder,
                    macos=entry.parent.parent.name,
                    bucket=bucket,
                    partitions=len(partitions),
                )
            )
    return InspectResult(root=root, models=tuple(models))


def _check_model(
    *,
    entry: str,
    folder: Path,
    macos: str,
    bucket: tuple[str, tuple[Tensor, ...], tuple[Tensor, ...]] | None,
    partitions: int,
) -> CachedModel:
    """Read one partition's spec and list what differs from the bucket."""
    problems: list[str] = []
    inputs: tuple[Tensor, ...] = ()
    outputs: tuple[Tensor, ...] = ()
    version = None
    if bucket is None:
        problems.append("key matches no bucket of this recipe (stale entry?)")
    if partitions > 1:
        problems.append(f"{partitions} partitions cached; the build gates on 1")
    if not (folder / "model").exists():
        problems.append("no partition model in the entry")
    else:
        try:
            spec = _load_spec(folder / "model")
        except (OSError, ValueError, KeyError, TypeError, DecodeError) as exc:
            problems.append(f"unreadable spec: {type(exc).__name__}: {exc}")
        else:
            inputs = tuple(_tensor(f) for f in spec.description.input)
            outputs = tuple(_tensor(f) for f in spec.description.output)
            version = int(spec.specificationVersion)
            limit = MAX_SPEC_VERSION.get(macos)
            if limit is None:
                problems.append(f"unknown macOS major {macos!r} in the entry path")
            elif version > limit:
                problems.append(f"spec version {version} needs a newer macOS than {macos}")
            if bucket is not None:
                problems += _compare(inputs, outputs, (bucket[1], bucket[2]))
    return CachedModel(
        entry=entry,
        bucket=bucket[0] if bucket else None,
        partition=folder.name,
        spec_version=version,
        inputs=inputs,
        outputs=outputs,
        problems=tuple(problems),
    )


def _compare(
    inputs: tuple[Tensor, ...],
    outputs: tuple[Tensor, ...],
    want: tuple[tuple[Tensor, ...], tuple[Tensor, ...]],
) -> list[str]:
    problems = []
    for kind, got, expected in (("input", inputs, want[0]), ("output", outputs, want[1])):
        by_name = {t.name: t for t in got}
        for tensor in expected:
            found = by_name.pop(tensor.name, None)
            if found is None:
                problems.append(f"{kind} {tensor.name} missing")
            elif found != tensor:
                problems.append(f"{kind} {found} where the bucket has {tensor}")
        problems += [f"unexpected {kind} {t}" for t in by_name.values()]
    return problems


_DTYPES = {65568: "float32", 65552: "float16", 65600: "float64", 131104: "int32"}
# Core ML ArrayFeatureType.ArrayDataType values (FeatureTypes.proto).


def _tensor(feature: Any) -> Tensor:
    kind = feature.type.WhichOneof("Type")
    if kind != "multiArrayType":
        return Tensor(name=feature.name, shape=(), dtype=kind or "unknown")
    array = feature.type.multiArrayType
    return Tensor(
        name=feature.name,
        shape=tuple(int(d) for d in array.shape),
        dtype=_DTYPES.get(int(array.dataType), str(array.dataType)),
    )


def _load_spec(path: Path) -> Any:
    """The Core ML spec of an ML Package directory or a ``.mlmodel`` file, read only.

    Never through coremltools' ``ModelPackage``: its destructor rewrites ``Manifest.json``, and
    a changed byte makes the runtime's entry check fail and rebuild the entry.
    """
    # coremltools warns on import when Core ML's own runtime is absent (any non-macOS host).
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    from coremltools.proto import Model_pb2

    model_file = path
    if path.is_dir():
        manifest = json.loads((path / "Manifest.json").read_text())
        root = manifest["itemInfoEntries"][manifest["rootModelIdentifier"]]
        model_file = path / "Data" / root["path"]
    spec = Model_pb2.Model()
    spec.ParseFromString(model_file.read_bytes())
    return spec


def _bucket_io(recipe: Recipe) -> dict[str, tuple[str, tuple[Tensor, ...], tuple[Tensor, ...]]]:
    """Cache key -> (bucket name, inputs, outputs) from the bucket models' own ONNX graphs."""
    import onnx

    from retinaface_coreml_toolchain import simplify

    try:
        record = json.loads(simplify.record_path(recipe).read_text())
    except (OSError, ValueError):
        return {}
    found = {}
    for entry in record["buckets"]:
        bucket = recipe.find_bucket(entry["bucket"])
        path = recipe.bucket_path(bucket)
        if not path.exists():
            continue
        graph = onnx.load(str(path), load_external_data=False).graph
        initializers = {i.name for i in graph.initializer}
        inputs = [v for v in graph.input if v.name not in initializers]
        found[entry["coreml_cache_key"]] = (
            bucket.name,
            tuple(_onnx_tensor(v) for v in inputs),
            tuple(_onnx_tensor(v) for v in graph.output),
        )
    return found


def _onnx_tensor(value: Any) -> Tensor:
    from onnx.helper import tensor_dtype_to_np_dtype

    tensor_type = value.type.tensor_type
    return Tensor(
        name=value.name,
        shape=tuple(d.dim_value for d in tensor_type.shape.dim),
        dtype=tensor_dtype_to_np_dtype(tensor_type.elem_type).name,
    )


def check_inspection(result: InspectResult) -> None:
    """Raise GateFailed naming the first problem (the CLI prints the table first)."""
    if result.problems:
        raise GateFailed(f"{len(result.problems)} cache problem(s); first: {result.problems[0]}")


def render(record: dict[str, Any]) -> str:
    """One row per cached partition model, or a line saying there is none."""
    if not record["models"]:
        return (
            f"no CoreML cache entries under {record['root']} "
            "(`toolchain precompile` builds them on macOS only)"
        )
    header = f"{'bucket':<9} {'partition':<20} {'spec':>4}  {'inputs':<22} {'outputs':<48} check"
    lines = [header, "-" * len(header)]
    for m in record["models"]:
        ins = " ".join(str(Tensor(**t)) for t in m["inputs"]) or "-"
        outs = " ".join(str(Tensor(**t)) for t in m["outputs"]) or "-"
        check = "ok" if not m["problems"] else "; ".join(m["problems"])
        lines.append(
            f"{m['bucket'] or '?':<9} {m['partition']:<20} {m['spec_version'] or '-':>4}  "
            f"{ins:<22} {outs:<48} {check}"
        )
        lines.append(f"          entry {m['entry']}")
    return "\n".join(lines)
