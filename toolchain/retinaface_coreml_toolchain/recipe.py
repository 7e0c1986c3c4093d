"""The build recipe (models/retinaface.toml) as frozen records."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retinaface_coreml.artifacts import ModelInfo
from retinaface_coreml_toolchain.errors import RecipeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DEFAULT_RECIPE = Path("models/retinaface.toml")


@dataclass(frozen=True, kw_only=True)
class Bucket:
    """A fixed input shape [1, 3, height, width].

    ``full_resolution`` marks a bucket made for one frame size (e.g. 1080x1920) at exactly that
    size: such a frame runs with no rescaling and no padding. ``FaceDetector``'s default picks
    among the other (small, fast) buckets only.
    """

    height: int
    width: int
    full_resolution: bool = False

    @property
    def name(self) -> str:
        """e.g. ``"384x640"`` (height x width)."""
        return f"{self.height}x{self.width}"


@dataclass(frozen=True, kw_only=True)
class Weights:
    package: str
    member: str
    variable: str
    path: Path
    sha256: str
    source: Path | None = None  # a team's own export; `toolchain build` takes it over the pin


@dataclass(frozen=True, kw_only=True)
class ValidateSpec:
    max_abs_diff: float
    score_threshold: float
    nms_threshold: float
    min_iou: float
    images: Path


@dataclass(frozen=True, kw_only=True)
class CoverageSpec:
    ort_version: str
    model_format: str
    min_coverage: float
    max_partitions: int


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """Everything the steps read; paths are resolved against the recipe's project root."""

    root: Path
    weights: Weights
    model: ModelInfo  # the same record the runtime reads back from manifest.json
    buckets: tuple[Bucket, ...]
    validate: ValidateSpec
    coverage: CoverageSpec
    coreml_options: dict[str, str] = field(default_factory=dict)

    @property
    def build_dir(self) -> Path:
        """e.g. ``<root>/models/build``."""
        return self.root / "models" / "build"

    @property
    def bucket_dir(self) -> Path:
        """e.g. ``<root>/models/build/retinaface``."""
        return self.build_dir / self.model.name

    def bucket_path(self, bucket: Bucket) -> Path:
        """e.g. ``<root>/models/build/retinaface/384x640.onnx``."""
        return self.bucket_dir / f"{bucket.name}.onnx"

    def find_bucket(self, name: str) -> Bucket:
        for bucket in self.buckets:
            if bucket.name == name:
                return bucket
        known = ", ".join(b.name for b in self.buckets)
        raise RecipeError(f"unknown bucket {name!r}: the recipe has {known}")


def load_recipe(path: Path = DEFAULT_RECIPE) -> Recipe:
    """Read and check the recipe at ``path``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise RecipeError(f"{path}: recipe not found; run from the project root") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read the recipe ({exc}); fix the TOML") from None
    root = path.resolve().parent.parent
    try:
        return _parse(data, root)
    except (KeyError, TypeError, ValueError) as exc:
        raise RecipeError(f"{path}: malformed recipe ({exc!r}); compare with the README") from None


def _parse(data: dict[str, Any], root: Path) -> Recipe:
    w, m, v, c = data["weights"], data["model"], data["validate"], data["coverage"]
    buckets = tuple(
        Bucket(
            height=int(b["height"]),
            width=int(b["width"]),
            full_resolution=bool(b.get("full_resolution", False)),
        )
        for b in data["buckets"]
    )
    for bucket in buckets:
        if bucket.height <= 0 or bucket.width <= 0:
            raise ValueError(f"bucket {bucket.name}: height and width must be positive")
        # A full-resolution bucket is the frame's own size: padding it to the stride changes
        # the faces near the padded edge (models/retinaface.toml says by how much).
        if not bucket.full_resolution and (bucket.height % 32 or bucket.width % 32):
            raise ValueError(f"bucket {bucket.name}: height and width must be multiples of 32")
    if not any(not b.full_resolution for b in buckets):
        raise ValueError("no bucket without full_resolution: FaceDetector's default needs one")
    if len({b.name for b in buckets}) != len(buckets):
        raise ValueError("duplicate bucket")
    return Recipe(
        root=root,
        weights=Weights(
            package=w["package"],
            member=w["member"],
            variable=w["variable"],
            path=root / w["path"],
            sha256=w["sha256"].lower(),
            source=root / w["source"] if w.get("source") else None,
        ),
        model=ModelInfo(
            name=m["name"],
            input=m["input"],
            outputs=tuple(m["outputs"]),
            mean_bgr=tuple(float(x) for x in m["mean_bgr"]),
            strides=tuple(int(s) for s in m["strides"]),
            min_sizes=tuple(tuple(int(s) for s in sizes) for sizes in m["min_sizes"]),
            variance=tuple(float(x) for x in m["variance"]),
        ),
        buckets=buckets,
        validate=ValidateSpec(
            max_abs_diff=float(v["max_abs_diff"]),
            score_threshold=float(v["score_threshold"]),
            nms_threshold=float(v["nms_threshold"]),
            min_iou=float(v["min_iou"]),
            images=root / v["images"],
        ),
        coverage=CoverageSpec(
            ort_version=str(c["ort_version"]),
            model_format=str(c["model_format"]),
            min_coverage=float(c["min_coverage"]),
            max_partitions=int(c["max_partitions"]),
        ),
        coreml_options={str(k): str(val) for k, val in data.get("coreml", {}).items()},
    )
