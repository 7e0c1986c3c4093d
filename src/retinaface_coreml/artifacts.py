"""The packaged models and their manifest.json: locate, read, verify against sha256."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retinaface_coreml.errors import ArtifactError, UnknownBucketError

MODELS_DIR = Path(__file__).resolve().parent / "models"
MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 2
# The model this runtime decodes; schema 2 lists it among others (docs/manifest.md).
DETECTOR_MODEL = "retinaface"

_REINSTALL = (
    "reinstall retinaface-coreml (pip install --force-reinstall) or rebuild with `make models`"
)


def sha256_file(path: Path) -> str:
    """sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_tree(folder: Path, *, skip: str) -> dict[str, str]:
    """sha256 of every file below ``folder`` but ``skip``, by sorted POSIX relative path.

    e.g. ``{"384x640.onnx": "c3781...", "coreml/1.32.0/14/.../model.txt": "9f..."}``; the
    manifest and the cache's entry.json both record a folder this way.
    """
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel != skip:
            files[rel] = sha256_file(path)
    return files


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """How to feed the network and decode its outputs."""

    name: str
    input: str
    outputs: tuple[str, ...]
    mean_bgr: tuple[float, float, float]
    strides: tuple[int, ...]
    min_sizes: tuple[tuple[int, ...], ...]
    variance: tuple[float, float]


@dataclass(frozen=True, kw_only=True)
class BucketInfo:
    """One fixed-shape model file, e.g. name ``"384x640"``, file ``"384x640.onnx"``."""

    name: str
    height: int
    width: int
    file: str
    coreml_cache_key: str
    full_resolution: bool = False  # made for one frame size, e.g. 1080x1920; not padded

    @property
    def aspect(self) -> float:
        return self.width / self.height


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """manifest.json as written by ``toolchain package``; ``raw`` keeps every field."""

    root: Path
    model: ModelInfo
    buckets: tuple[BucketInfo, ...]
    files: dict[str, str]
    raw: dict[str, Any]

    @property
    def source_sha256(self) -> str | None:
        """sha256 of the ONNX the buckets were built from (``toolchain fetch`` recorded it)."""
        return self.raw["model"].get("source_sha256")

    def bucket(self, name: str) -> BucketInfo:
        for bucket in self.buckets:
            if bucket.name == name:
                return bucket
        known = ", ".join(b.name for b in self.buckets)
        raise UnknownBucketError(
            f"unknown bucket {name!r}; this install has: {known}, or 'auto' or 'full'"
        )

    def path(self, relpath: str) -> Path:
        """Absolute path of a manifest entry, e.g. ``<site-packages>/.../models/384x640.onnx``."""
        return self.root / relpath

    def read_verified(self, relpath: str) -> bytes:
        """Read a listed file and check its sha256; raise ArtifactError naming it on mismatch."""
        expected = self.files.get(relpath)
        path = self.path(relpath)
        if expected is None:
            raise ArtifactError(f"{path}: not listed in {MANIFEST_NAME}; {_REINSTALL}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ArtifactError(f"{path}: cannot read ({exc.strerror}); {_REINSTALL}") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ArtifactError(
                f"{path}: sha256 {actual[:16]}… does not match the manifest's {expected[:16]}… "
                f"(modified or truncated); {_REINSTALL}"
            )
        return data

    def verify_all(self) -> list[str]:
        """Check every listed file; return the problems found (empty when all match)."""
        problems = []
        for relpath in sorted(self.files):
            try:
                self.read_verified(relpath)
            except ArtifactError as exc:
                problems.append(str(exc))
        return problems


def load_manifest(root: Path = MODELS_DIR) -> Manifest:
    """Read ``<root>/manifest.json``; raise ArtifactError with the fix when absent or malformed."""
    path = Path(root) / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(
            f"{path}: no manifest; this copy of retinaface-coreml has no models — "
            "install the wheel built by `make models`"
        ) from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: unreadable manifest ({exc}); {_REINSTALL}") from None
    try:
        return _parse(raw, Path(root))
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path}: malformed manifest ({exc!r}); {_REINSTALL}") from None


def _detector_view(raw: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 seen as the one-model record this runtime reads: RetinaFace's buckets, its
    detector fields as ``model``, its last precompile record as ``coreml_cache``."""
    record = raw["models"][DETECTOR_MODEL]
    detector = record["detector"]
    name = detector["input"]
    return {
        **raw,
        "model": {
            "name": DETECTOR_MODEL,
            **{k: detector[k] for k in ("input", "outputs", "mean_bgr", "strides", "min_sizes")},
            "variance": detector["variance"],
            "source_sha256": record["source"]["sha256"],
            "source_origin": record["source"].get("origin"),
        },
        "buckets": [
            {**b, "height": b["inputs"][name][2], "width": b["inputs"][name][3]}
            for b in record["buckets"]
        ],
        "validation": record.get("validation"),
        "coverage": record.get("coverage"),
        "coreml_cache": record.get("precompile") or {},
    }


def _parse(raw: dict[str, Any], root: Path) -> Manifest:
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"schema_version {raw.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    raw = _detector_view(raw)
    m = raw["model"]
    model = ModelInfo(
        name=m["name"],
        input=m["input"],
        outputs=tuple(m["outputs"]),
        mean_bgr=tuple(float(x) for x in m["mean_bgr"]),
        strides=tuple(int(s) for s in m["strides"]),
        min_sizes=tuple(tuple(int(s) for s in sizes) for sizes in m["min_sizes"]),
        variance=tuple(float(x) for x in m["variance"]),
    )
    buckets = tuple(
        BucketInfo(
            name=b["name"],
            height=int(b["height"]),
            width=int(b["width"]),
            file=b["file"],
            coreml_cache_key=b["coreml_cache_key"],
            full_resolution=bool(b.get("full_resolution", False)),
        )
        for b in raw["buckets"]
    )
    if not buckets:
        raise ValueError("no buckets")
    files = {str(k): str(v) for k, v in raw["files"].items()}
    return Manifest(root=root, model=model, buckets=buckets, files=files, raw=raw)
