"""Step 6: stage the artefacts and manifest.json into the package, then build the wheel.

The staged folder is ``src/retinaface_coreml/models/`` (ignored by git, listed as a hatch
artifact); it is replaced whole, so an interrupted run leaves the previous complete set.
Hatchling builds reproducible wheels (sorted members, SOURCE_DATE_EPOCH timestamps).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from retinaface_coreml.artifacts import MANIFEST_NAME
from retinaface_coreml_toolchain.coverage_step import coverage_dir, summarize
from retinaface_coreml_toolchain.errors import MissingInputError, PackageError
from retinaface_coreml_toolchain.files import copy_file, staging_dir, write_json
from retinaface_coreml_toolchain.manifest import build_manifest
from retinaface_coreml_toolchain.recipe import Recipe
from retinaface_coreml_toolchain.steplog import step
from retinaface_coreml_toolchain.toolchain_wheel import build_toolchain_wheel

# Used when SOURCE_DATE_EPOCH is unset, so two builds of the same inputs match byte for byte.
DEFAULT_SOURCE_DATE_EPOCH = "1700000000"


@dataclass(frozen=True, kw_only=True)
class PackageResult:
    wheel: Path
    sha256: str
    files: int
    coreml_cache: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "wheel": str(self.wheel),
            "sha256": self.sha256,
            "files": self.files,
            "coreml_cache": self.coreml_cache,
        }


def package_dir(recipe: Recipe) -> Path:
    """e.g. ``<root>/src/retinaface_coreml/models``."""
    return recipe.root / "src" / "retinaface_coreml" / "models"


def _read_json(path: Path, step_name: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise MissingInputError(f"{path}: missing; run `toolchain {step_name}` first") from None
    except (OSError, ValueError) as exc:
        raise MissingInputError(
            f"{path}: unreadable ({exc}); run `toolchain {step_name}`"
        ) from None


def _optional_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def stage(recipe: Recipe) -> dict[str, Any]:
    """Copy bucket models (and a CoreML cache, if precompiled) into the package with a manifest."""
    from retinaface_coreml_toolchain import simplify, validate
    from retinaface_coreml_toolchain.source import source_model

    simplified = _read_json(simplify.record_path(recipe), "simplify")
    validation = _read_json(validate.record_path(recipe), "validate")
    source = _read_json(recipe.build_dir / "source.json", "fetch")
    by_name = {b["bucket"]: b for b in simplified["buckets"]}
    coverage = {}
    for name in sorted(by_name):
        record = _optional_json(coverage_dir(recipe) / f"{name}.json")
        if record is not None:
            coverage[name] = summarize(record)
    precompiled = _optional_json(recipe.build_dir / "precompile.json") or {}
    cache_src = recipe.build_dir / "coreml"
    with staging_dir(package_dir(recipe)) as tmp:
        buckets = []
        for bucket in recipe.buckets:
            if bucket.name not in by_name:
                raise MissingInputError(
                    f"{simplify.record_path(recipe)}: no bucket {bucket.name}; "
                    "run `toolchain simplify`"
                )
            path = recipe.bucket_path(bucket)
            if not path.exists():
                raise MissingInputError(f"{path}: missing; run `toolchain simplify` first")
            digest = copy_file(path, tmp / path.name)
            if digest != by_name[bucket.name]["sha256"]:
                raise MissingInputError(
                    f"{path}: changed since `toolchain simplify`; run simplify and validate again"
                )
            info = by_name[bucket.name]
            buckets.append(
                {
                    "name": bucket.name,
                    "height": bucket.height,
                    "width": bucket.width,
                    "file": path.name,
                    "coreml_cache_key": info["coreml_cache_key"],
                    "full_resolution": bucket.full_resolution,
                    "nodes_source": info["nodes_before"],
                    "nodes": info["nodes_after"],
                }
            )
        if cache_src.is_dir() and any(cache_src.iterdir()):
            shutil.copytree(cache_src, tmp / "coreml")
        manifest = build_manifest(
            folder=tmp,
            model={
                **asdict(source_model(recipe)),  # the output names the buckets really have
                "source_sha256": source["sha256"],
                "source_origin": source["origin"],
            },
            buckets=buckets,
            versions={
                "onnx": metadata.version("onnx"),
                "onnxsim": metadata.version("onnxsim"),
                "onnxruntime": metadata.version("onnxruntime"),
                "retinaface_coreml": metadata.version("retinaface-coreml"),
            },
            validation=validation,
            coverage=coverage,
            coreml_cache=precompiled,
        )
        write_json(tmp / MANIFEST_NAME, manifest)
    return manifest


def build_wheel(recipe: Recipe) -> PackageResult:
    """Stage the artefacts, then `python -m build --wheel --no-isolation` into dist/."""
    import hashlib

    with step("package"):
        manifest = stage(recipe)
        dist = recipe.root / "dist"
        dist.mkdir(exist_ok=True)
        for old in dist.glob("retinaface_coreml-*.whl"):
            old.unlink()
        env = {**os.environ}
        env.setdefault("SOURCE_DATE_EPOCH", DEFAULT_SOURCE_DATE_EPOCH)
        command = [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(dist),
        ]
        proc = subprocess.run(
            command, cwd=recipe.root, env=env, capture_output=True, text=True, check=False
        )
        wheels = sorted(dist.glob("retinaface_coreml-*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            tail = (proc.stderr.strip().splitlines() or ["no wheel produced"])[-1]
            raise PackageError(f"python -m build failed in {recipe.root} ({tail})")
        wheel = wheels[0]
        has_cache = bool(manifest["coreml_cache"].get("entries"))
        if has_cache:
            from retinaface_coreml_toolchain.wheel_tags import retag_for_cache

            wheel = retag_for_cache(wheel)
        build_toolchain_wheel(dist, env=env)  # the toolchain's own wheel, beside the runtime's
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return PackageResult(
        wheel=wheel, sha256=digest, files=len(manifest["files"]) + 1, coreml_cache=has_cache
    )


def render(record: dict[str, Any]) -> str:
    cache = "with a CoreML cache" if record["coreml_cache"] else "without a CoreML cache"
    return (
        f"wheel: {record['wheel']}\nsha256: {record['sha256']}\n"
        f"({record['files']} artefacts, {cache})"
    )
