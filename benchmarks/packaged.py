"""What the packaged-model benchmarks share: the manifest's models, their source files, inputs.

The manifest is read as the JSON that ``docs/manifest.md`` (schema 2) specifies, not through the
runtime's classes, so a benchmark can say what is packaged even when the runtime under test
cannot serve it. Each benchmark names the three models the issue asks for; one that is not in
the manifest, or whose source file is not on disk, becomes a row saying so and how to fix it.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS_ENV = "RETINAFACE_COREML_MODELS_DIR"  # the runtime serves this models directory instead
DEFAULT_MODELS_DIR = ROOT / "src" / "retinaface_coreml" / "models"
# Where the sources live: `make models` fetches RetinaFace, `make zoo` exports MTL and STAR.
SOURCE_DIRS = (ROOT / "weights", ROOT / "models" / "zoo")
WANTED = ("retinaface", "mtl", "star")
PREFERRED_BUCKET = {"retinaface": "640x640"}
CPU_EP = "CPUExecutionProvider"
HOW_TO_GET = {
    "retinaface": "run `make models`",
    "mtl": "run `make zoo` (or copy models/zoo/mtl.onnx), then add it with `toolchain add`",
    "star": "run `make zoo` (or copy models/zoo/star.onnx), then add it with `toolchain add`",
}
NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
}


class RuntimeUnavailableError(Exception):
    """The runtime under test lacks the API a benchmark measures; the message says what."""


@dataclass(frozen=True, kw_only=True)
class Target:
    """One packaged model to measure: its source file and the batch-1 bucket chosen."""

    name: str
    source: Path
    bucket: str
    bucket_file: Path
    inputs: dict[str, tuple[int, ...]]
    input_types: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class Missing:
    """A wanted model that cannot be measured, and why, e.g. ``not in the manifest``."""

    name: str
    reason: str


def models_dir() -> Path:
    """The models directory the runtime serves: ``$RETINAFACE_COREML_MODELS_DIR`` or src's."""
    return Path(os.environ.get(MODELS_ENV) or DEFAULT_MODELS_DIR)


def require_runtime() -> None:
    """Raise one line when ``retinaface_coreml`` has no packaged-model API yet."""
    try:
        import retinaface_coreml
        import retinaface_coreml.onnxruntime
    except ImportError as exc:
        raise RuntimeUnavailableError(
            f"retinaface_coreml.onnxruntime cannot be imported ({exc}); this benchmark needs the "
            "packaged-model runtime (issue 14, branch h-runtime)"
        ) from None
    missing = [n for n in ("install", "uninstall") if not hasattr(retinaface_coreml, n)]
    if missing:
        raise RuntimeUnavailableError(
            f"retinaface_coreml has no {', '.join(missing)}(); this benchmark needs the "
            "packaged-model runtime (issue 14, branch h-runtime)"
        )


def _sources_by_size() -> dict[int, list[Path]]:
    found: dict[int, list[Path]] = {}
    for folder in SOURCE_DIRS:
        for path in sorted(folder.glob("*.onnx")) if folder.is_dir() else ():
            found.setdefault(path.stat().st_size, []).append(path)
    return found


def _pick_bucket(name: str, buckets: list[dict]) -> dict | None:
    """The preferred bucket by name, else the first whose every input has batch 1."""
    for bucket in buckets:
        if bucket["name"] == PREFERRED_BUCKET.get(name):
            return bucket
    return next((b for b in buckets if all(s[0] == 1 for s in b["inputs"].values())), None)


def targets(wanted: tuple[str, ...] = WANTED) -> tuple[list[Target], list[Missing]]:
    """The wanted models that can be measured here, and a reason for each of the others."""
    # Here, not at the top: install_cost's raw child imports this module and must not load ours.
    from retinaface_coreml.artifacts import sha256_file

    folder = models_dir()
    manifest_path = folder / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        reason = f"{manifest_path}: unreadable ({exc.__class__.__name__}); run `make models`"
        return [], [Missing(name=n, reason=reason) for n in wanted]
    if manifest.get("schema_version") != 2:
        reason = (
            f"{manifest_path}: schema {manifest.get('schema_version')}, not 2 (docs/manifest.md); "
            "rebuild with `make models` on the multi-model toolchain"
        )
        return [], [Missing(name=n, reason=reason) for n in wanted]
    models = manifest.get("models", {})
    by_size = _sources_by_size()
    found, missing = [], []
    for name in wanted:
        record = models.get(name)
        if record is None:
            missing.append(Missing(name=name, reason=f"not in {manifest_path}; {HOW_TO_GET[name]}"))
            continue
        source = record["source"]
        paths = [p for p in by_size.get(source["size"], []) if sha256_file(p) == source["sha256"]]
        bucket = _pick_bucket(name, record["buckets"])
        if not paths:
            dirs = " or ".join(str(d.relative_to(ROOT)) for d in SOURCE_DIRS)
            reason = f"source (sha256 {source['sha256'][:12]}) not found in {dirs}"
            missing.append(Missing(name=name, reason=f"{reason}; {HOW_TO_GET[name]}"))
        elif bucket is None:
            missing.append(Missing(name=name, reason="no bucket with batch 1 in the manifest"))
        else:
            types = {i["name"]: i["type"] for i in record["inputs"]}
            found.append(
                Target(
                    name=name,
                    source=paths[0],
                    bucket=bucket["name"],
                    bucket_file=folder / bucket["file"],
                    inputs={k: tuple(v) for k, v in bucket["inputs"].items()},
                    input_types=types,
                )
            )
    return found, missing


def feed(target: Target, seed: int = 0) -> dict[str, np.ndarray]:
    """One input of the bucket's shapes, uniform in [0, 1) (e.g. ``{"input": (1,3,640,640)}``)."""
    rng = np.random.default_rng(seed)
    return {
        name: rng.random(shape).astype(NUMPY_TYPES.get(target.input_types.get(name), np.float32))
        for name, shape in target.inputs.items()
    }


def measurable(program: str) -> tuple[list[Target], list[Missing]] | None:
    """``targets()`` when the runtime under test has the API, else None after one stderr line
    naming ``program`` and what is missing."""
    try:
        require_runtime()
    except RuntimeUnavailableError as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        return None
    return targets()
