"""The packaged models and their manifest.json (schema 2, docs/manifest.md): read, verify.

One manifest lists every packaged model under ``models``; each model record holds its source
model's identity (sha256, size) and NodeArg metadata, its fixed-shape buckets (every input's
static shape), whether batch items are independent, its CoreML options and shipped entries,
and, for a model a detector decodes (RetinaFace), a ``detector`` section. Each bucket also
carries the build's CoreML numerical-gate refusals of it (``precompile.refused``), parsed once
here for ``packaged/refusal.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from retinaface_coreml.errors import ArtifactError, UnknownBucketError
from retinaface_coreml.hash_memory import load_known, read_hashing, sha256_stream

MODELS_DIR = Path(__file__).resolve().parent / "models"
MODELS_ENV = "RETINAFACE_COREML_MODELS_DIR"
"""Serve the models of another models directory (e.g. a build's output) instead."""
MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 2

_REINSTALL = (
    "reinstall retinaface-coreml (pip install --force-reinstall) or rebuild with `make models`"
)

T = TypeVar("T")

Dim = int | str | None
"""One dimension as onnxruntime's NodeArg reports it: an int, a symbolic name, or None."""


def sha256_file(path: Path) -> str:
    """sha256 hex digest of a file, read in 1 MiB chunks."""
    with path.open("rb") as handle:
        return sha256_stream(handle)


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


def default_models_dir() -> Path:
    """``$RETINAFACE_COREML_MODELS_DIR`` when set, else the installed package's models."""
    chosen = os.environ.get(MODELS_ENV)
    return Path(chosen) if chosen else MODELS_DIR


@dataclass(frozen=True, kw_only=True)
class NodeInfo:
    """A source input or output as onnxruntime's NodeArg reports it (``.name .type .shape``)."""

    name: str
    type: str
    shape: list[Dim]

    def __repr__(self) -> str:
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape!r})"


@dataclass(frozen=True, kw_only=True)
class DetectorInfo:
    """How a detector feeds the network and decodes its outputs (RetinaFace's section)."""

    name: str
    input: str
    outputs: tuple[str, ...]
    mean_bgr: tuple[float, float, float]
    strides: tuple[int, ...]
    min_sizes: tuple[tuple[int, ...], ...]
    variance: tuple[float, float]


ModelInfo = DetectorInfo
"""The toolchain's name for a detector section (its recipe reader builds one)."""


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """The build's CoreML numerical gate refused a bucket's compiled entry (nothing shipped),
    e.g. on onnxruntime ``"1.32.0"``, macOS ``"14"``, options ``"1e63e1b50d8d"``: reason
    ``"box IoU 0.8312 < 0.9"``, figures ``{"min_iou": 0.8312, ...}``."""

    ort_version: str
    macos_major: str
    options_digest: str
    reason: str
    figures: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class BucketInfo:
    """One fixed-shape model file, e.g. ``"384x640"``: inputs ``{"input": (1, 3, 384, 640)}``."""

    name: str
    model: str
    file: str
    inputs: Mapping[str, tuple[int, ...]]
    coreml_cache_key: str
    full_resolution: bool = False  # made for one frame size, e.g. 1080x1920; not padded
    refusals: tuple[Refusal, ...] = ()  # one per (ORT, macOS major) whose gate refused it

    @property
    def height(self) -> int:
        """The image height of the first input (an NCHW image model's bucket)."""
        return next(iter(self.inputs.values()))[-2]

    @property
    def width(self) -> int:
        return next(iter(self.inputs.values()))[-1]

    @property
    def aspect(self) -> float:
        return self.width / self.height

    @property
    def batch(self) -> int:
        """Axis 0 of the first input."""
        return next(iter(self.inputs.values()))[0]


@dataclass(frozen=True, kw_only=True)
class CoreMLInfo:
    """The recipe's CoreML provider options and their digest."""

    provider_options: Mapping[str, str]
    options_digest: str


@dataclass(frozen=True, kw_only=True)
class ModelRecord:
    """One packaged model: its source's identity and NodeArgs, its buckets, its CoreML options."""

    name: str
    source_sha256: str
    source_size: int
    inputs: tuple[NodeInfo, ...]
    outputs: tuple[NodeInfo, ...]
    batch_independent: bool
    buckets: tuple[BucketInfo, ...]
    coreml: CoreMLInfo
    detector: DetectorInfo | None
    raw: Mapping[str, Any] = field(repr=False)

    def bucket(self, name: str) -> BucketInfo:
        for bucket in self.buckets:
            if bucket.name == name:
                return bucket
        known = ", ".join(b.name for b in self.buckets)
        raise UnknownBucketError(
            f"unknown bucket {name!r} of model {self.name!r}; this install has: {known}"
            + (", or 'auto' or 'full'" if self.detector is not None else "")
        )

    def bucket_for_shapes(self, shapes: Mapping[str, tuple[int, ...]]) -> BucketInfo | None:
        """The bucket whose every input has exactly these shapes, if any."""
        wanted = {name: tuple(shape) for name, shape in shapes.items()}
        return next((b for b in self.buckets if dict(b.inputs) == wanted), None)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """manifest.json as written by ``toolchain package``; ``raw`` keeps every field."""

    root: Path
    models: Mapping[str, ModelRecord]
    files: Mapping[str, str]
    raw: Mapping[str, Any] = field(repr=False)

    def model(self, name: str) -> ModelRecord:
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models)) or "none"
            raise ArtifactError(
                f"{self.root / MANIFEST_NAME}: no packaged model {name!r} (packaged: {known}); "
                f"add models/{name}.toml and rebuild with `make models`"
            ) from None

    def detector_model(self, kind: str = "retinaface") -> ModelRecord:
        """The packaged model a ``kind`` detector decodes (RetinaFace's record)."""
        for record in self.models.values():
            if record.detector is not None and record.detector.name == kind:
                return record
        raise ArtifactError(
            f"{self.root / MANIFEST_NAME}: no packaged {kind} model (packaged: "
            f"{', '.join(sorted(self.models)) or 'none'}); {_REINSTALL}"
        )

    def by_source(self, sha256: str) -> ModelRecord | None:
        """The model built from the source file whose bytes hash to ``sha256``."""
        return next((m for m in self.models.values() if m.source_sha256 == sha256), None)

    def source_sizes(self) -> frozenset[int]:
        """Sizes of every packaged source: a file of another size is not packaged (no hash)."""
        return frozenset(m.source_size for m in self.models.values())

    def path(self, relpath: str) -> Path:
        """Absolute path of a manifest entry, e.g. ``<site-packages>/.../models/384x640.onnx``."""
        return self.root / relpath

    def read_verified(self, relpath: str) -> bytes:
        """Read a listed file and check its sha256; raise ArtifactError naming it on mismatch."""
        return self.load_checked(relpath, bytes)

    def load_checked(self, relpath: str, load: Callable[[bytes], T]) -> T:
        """``load`` a listed file's bytes, read once and hashed meanwhile on another thread (or
        recalled: hash_memory.py), and return the result only if they match the manifest: the
        hash and, e.g., onnxruntime building a session from the same bytes overlap. On a
        mismatch the result is dropped and ArtifactError names the file and the fix, also when
        ``load`` failed on the damaged bytes; else what ``load`` raises propagates."""
        expected = self.files.get(relpath)
        path = self.path(relpath)
        if expected is None:
            raise ArtifactError(f"{path}: not listed in {MANIFEST_NAME}; {_REINSTALL}")
        try:
            data, digest = read_hashing(path)  # hashed once per file version, across processes
        except OSError as exc:
            raise ArtifactError(f"{path}: cannot read ({exc.strerror}); {_REINSTALL}") from None
        try:
            loaded = load(data)
        except Exception:
            self._check(path, digest(), expected)  # a damaged file is named, not the loader's error
            raise
        self._check(path, digest(), expected)
        return loaded

    @staticmethod
    def _check(path: Path, actual: str, expected: str) -> None:
        if actual != expected:
            raise ArtifactError(
                f"{path}: sha256 {actual[:16]}… does not match the manifest's {expected[:16]}… "
                f"(modified or truncated); {_REINSTALL}"
            )

    def load_verified(self, relpath: str, load: Callable[[str | bytes], T]) -> T:
        """``load`` a listed file: given a path to it when its version is remembered to match
        the manifest (hash_memory.py; no read), else its bytes (``load_checked``)."""
        expected = self.files.get(relpath)
        if expected is None:
            return self.load_checked(relpath, load)  # which names the file and the fix
        return load_known(
            self.path(relpath), expected, load, lambda: self.load_checked(relpath, load)
        )

    def verify_all(self) -> list[str]:
        """Check every listed file; return the problems found (empty when all match)."""
        problems = []
        for relpath in sorted(self.files):
            try:
                self.read_verified(relpath)
            except ArtifactError as exc:
                problems.append(str(exc))
        return problems


_loaded: dict[tuple[str, int, int], Manifest] = {}


def load_manifest(root: Path | None = None) -> Manifest:
    """Read ``<root>/manifest.json``; raise ArtifactError with the fix when absent or malformed.

    Parsed once per file version (path, size, mtime): every session of a process shares it.
    """
    root = Path(root) if root is not None else default_models_dir()
    path = root / MANIFEST_NAME
    try:
        stat = path.stat()
        memo = (str(path), stat.st_size, stat.st_mtime_ns)
        if memo in _loaded:
            return _loaded[memo]
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(
            f"{path}: no manifest; this copy of retinaface-coreml has no models — "
            "install the wheel built by `make models`"
        ) from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: unreadable manifest ({exc}); {_REINSTALL}") from None
    found = raw.get("schema_version") if isinstance(raw, dict) else None
    if found != SCHEMA_VERSION:
        raise ArtifactError(
            f"{path}: manifest schema_version {found!r}, this runtime reads {SCHEMA_VERSION} "
            f"(docs/manifest.md); {_REINSTALL}"
        )
    try:
        manifest = _parse(raw, root)
    except MalformedRefusal as exc:
        raise ArtifactError(
            f"{path}: malformed CoreML refusal record ({exc}); rebuild the wheel with "
            "`make models` (its precompile step writes this record) and reinstall it"
        ) from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ArtifactError(f"{path}: malformed manifest ({exc!r}); {_REINSTALL}") from None
    _loaded[memo] = manifest
    return manifest


def _nodes(records: list[dict[str, Any]]) -> tuple[NodeInfo, ...]:
    return tuple(
        NodeInfo(name=str(r["name"]), type=str(r["type"]), shape=list(r["shape"])) for r in records
    )


def _detector(d: dict[str, Any] | None) -> DetectorInfo | None:
    if d is None:
        return None
    return DetectorInfo(
        name=str(d["kind"]),
        input=d["input"],
        outputs=tuple(d["outputs"]),
        mean_bgr=tuple(float(x) for x in d["mean_bgr"]),
        strides=tuple(int(s) for s in d["strides"]),
        min_sizes=tuple(tuple(int(s) for s in sizes) for sizes in d["min_sizes"]),
        variance=tuple(float(x) for x in d["variance"]),
    )


class MalformedRefusal(ValueError):
    """A ``precompile.refused`` record the runtime cannot read (load_manifest names the fix)."""


def _refusals(name: str, m: dict[str, Any], buckets: set[str]) -> dict[str, list[Refusal]]:
    """Each bucket's refusals: one per release record of ``precompile`` (merge-caches writes
    ``releases``; one precompile run is the record itself), e.g. ``{"640x640": [Refusal]}``."""
    precompile = m.get("precompile") or {}
    if not isinstance(precompile, dict):
        raise MalformedRefusal(f"model {name!r}: precompile is not an object")
    releases = precompile.get("releases")
    if releases is not None and not isinstance(releases, list):
        raise MalformedRefusal(f"model {name!r}: precompile.releases is not a list")
    records = [(f".releases[{i}]", r) for i, r in enumerate(releases or [])]
    found: dict[str, list[Refusal]] = {}
    for where, record in records or [("", precompile)]:
        at = f"model {name!r}: precompile{where}.refused"
        refused = record.get("refused") if isinstance(record, dict) else []
        if refused is not None and not isinstance(refused, dict):
            raise MalformedRefusal(f"{at}: not an object of buckets")
        for bucket, item in (refused or {}).items():
            release = {k: record.get(k) for k in ("ort_version", "macos_major", "options_digest")}
            problem = _refusal_problem(bucket in buckets, item, release)
            if problem is not None:
                raise MalformedRefusal(f"{at}[{bucket!r}]: {problem}")
            found.setdefault(bucket, []).append(
                Refusal(**release, reason=item["reason"], figures=item["figures"])
            )
    return found


def _refusal_problem(known: bool, item: Any, release: dict[str, Any]) -> str | None:
    """What is wrong with one refusal record, or None."""
    if not known:
        return "no such bucket in this model"
    if not (
        isinstance(item, dict)
        and isinstance(item.get("reason"), str)
        and isinstance(item.get("figures"), dict)
    ):
        return "needs a 'reason' string and a 'figures' object"
    if not all(isinstance(v, str) and v for v in release.values()):
        return "its release record needs ort_version, macos_major and options_digest strings"
    return None


def _model(name: str, m: dict[str, Any]) -> ModelRecord:
    refusals = _refusals(name, m, {str(b["name"]) for b in m["buckets"]})
    buckets = tuple(
        BucketInfo(
            name=b["name"],
            model=name,
            file=b["file"],
            inputs={k: tuple(int(d) for d in v) for k, v in b["inputs"].items()},
            coreml_cache_key=b["coreml_cache_key"],
            full_resolution=bool(b.get("full_resolution", False)),
            refusals=tuple(refusals.get(b["name"], ())),
        )
        for b in m["buckets"]
    )
    if not buckets:
        raise ValueError(f"model {name!r} has no buckets")
    coreml = m.get("coreml") or {}
    options = {str(k): str(v) for k, v in (coreml.get("provider_options") or {}).items()}
    return ModelRecord(
        name=name,
        source_sha256=str(m["source"]["sha256"]),
        source_size=int(m["source"]["size"]),
        inputs=_nodes(m["inputs"]),
        outputs=_nodes(m["outputs"]),
        batch_independent=bool(m.get("batch_independent", False)),
        buckets=buckets,
        coreml=CoreMLInfo(
            provider_options=options, options_digest=str(coreml.get("options_digest", ""))
        ),
        detector=_detector(m.get("detector")),
        raw=m,
    )


def _parse(raw: dict[str, Any], root: Path) -> Manifest:
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"schema_version {raw.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    models = {str(name): _model(str(name), m) for name, m in raw["models"].items()}
    if not models:
        raise ValueError("no models")
    files = {str(k): str(v) for k, v in raw["files"].items()}
    return Manifest(root=root, models=models, files=files, raw=raw)
