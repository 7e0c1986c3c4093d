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
from retinaface_coreml_toolchain.errors import MissingInputError, PackageError
from retinaface_coreml_toolchain.files import (
    copy_file,
    read_step_record,
    staging_dir,
    write_json,
)
from retinaface_coreml_toolchain.manifest import build_manifest, model_record
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
    models: tuple[str, ...] = ()
    size: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "wheel": str(self.wheel),
            "sha256": self.sha256,
            "files": self.files,
            "coreml_cache": self.coreml_cache,
            "models": list(self.models),
            "size": self.size,
        }


def package_dir(root: Path) -> Path:
    """e.g. ``<root>/src/retinaface_coreml/models``."""
    return root / "src" / "retinaface_coreml" / "models"


def _optional_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _stage_model(recipe: Recipe, tmp: Path) -> dict[str, Any]:
    """Copy one model's buckets (and CoreML cache) into ``tmp``; return its manifest record."""
    from retinaface_coreml import coreml
    from retinaface_coreml_toolchain import coverage_step, simplify, validate
    from retinaface_coreml_toolchain.source import source_model, source_record

    simplified = read_step_record(simplify.record_path(recipe), "simplify")
    validation = read_step_record(validate.record_path(recipe), "validate")
    coverage = read_step_record(coverage_step.record_path(recipe), "coverage")
    source = source_record(recipe)
    by_name = {b["bucket"]: b for b in simplified["buckets"]}
    precompiled = _optional_json(recipe.build_dir / "precompile.json") or {}
    options = dict(recipe.coreml_options or coreml.DEFAULT_OPTIONS)
    buckets = []
    (tmp / recipe.name).mkdir(parents=True, exist_ok=True)
    for bucket in recipe.buckets:
        if bucket.name not in by_name:
            raise MissingInputError(
                f"{simplify.record_path(recipe)}: no bucket {bucket.name}; run `toolchain simplify`"
            )
        path = recipe.bucket_path(bucket)
        if not path.exists():
            raise MissingInputError(f"{path}: missing; run `toolchain simplify` first")
        rel = f"{recipe.name}/{bucket.name}.onnx"
        digest = copy_file(path, tmp / rel)
        info = by_name[bucket.name]
        if digest != info["sha256"]:
            raise MissingInputError(
                f"{path}: changed since `toolchain simplify`; run simplify and validate again"
            )
        buckets.append(
            {
                "name": bucket.name,
                "file": rel,
                "inputs": {k: list(v) for k, v in bucket.inputs.items()},
                "coreml_cache_key": info["coreml_cache_key"],
                "full_resolution": bucket.full_resolution,
                "nodes_source": info["nodes_before"],
                "nodes": info["nodes_after"],
                "sha256": digest,
            }
        )
    cache_src = recipe.build_dir / "coreml"
    if precompiled.get("status") == "built" and cache_src.is_dir():
        shutil.copytree(cache_src, tmp / "coreml", dirs_exist_ok=True)
    detector = None
    if recipe.detector is not None:
        fields = asdict(source_model(recipe))
        del fields["name"]
        detector = {"kind": "retinaface", **json.loads(json.dumps(fields))}  # tuples -> lists
    return model_record(
        name=recipe.name,
        source=source,
        batch_independent=recipe.batch_independent,
        buckets=buckets,
        provider_options=dict(sorted(options.items())),
        options_digest=coreml.options_digest(options),
        precompile=precompiled,
        validation=validation,
        coverage=coverage_step.manifest_coverage(coverage),
        detector=detector,
    )


def stage(recipes: list[Recipe]) -> dict[str, Any]:
    """Copy every model's buckets (and CoreML caches) into the package with one manifest."""
    root = _one_root(recipes)
    with staging_dir(package_dir(root)) as tmp:
        models = {recipe.name: _stage_model(recipe, tmp) for recipe in recipes}
        manifest = build_manifest(
            folder=tmp,
            models=models,
            versions={
                "onnx": metadata.version("onnx"),
                "onnxsim": metadata.version("onnxsim"),
                "onnxruntime": metadata.version("onnxruntime"),
                "retinaface_coreml": metadata.version("retinaface-coreml"),
            },
        )
        write_json(tmp / MANIFEST_NAME, manifest)
    return manifest


def _one_root(recipes: list[Recipe]) -> Path:
    if not recipes:
        raise PackageError("no recipe to package; add one with `toolchain add`")
    roots = {r.root for r in recipes}
    if len(roots) != 1:
        raise PackageError(f"recipes from several projects {sorted(map(str, roots))}")
    return roots.pop()


def build_wheel(recipes: Recipe | list[Recipe]) -> PackageResult:
    """Stage the artefacts, then `python -m build --wheel --no-isolation` into dist/."""
    import hashlib

    recipes = [recipes] if isinstance(recipes, Recipe) else list(recipes)
    with step("package"):
        manifest = stage(recipes)
        root = _one_root(recipes)
        dist = root / "dist"
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
            command, cwd=root, env=env, capture_output=True, text=True, check=False
        )
        wheels = sorted(dist.glob("retinaface_coreml-*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            tail = (proc.stderr.strip().splitlines() or ["no wheel produced"])[-1]
            raise PackageError(f"python -m build failed in {root} ({tail})")
        wheel = wheels[0]
        has_cache = any(m["coreml_cache"] for m in manifest["models"].values())
        if has_cache:
            from retinaface_coreml_toolchain.wheel_tags import retag_for_cache

            wheel = retag_for_cache(wheel)
        build_toolchain_wheel(dist, env=env)  # the toolchain's own wheel, beside the runtime's
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return PackageResult(
        wheel=wheel,
        sha256=digest,
        files=len(manifest["files"]) + 1,
        coreml_cache=has_cache,
        models=tuple(manifest["models"]),
        size=wheel.stat().st_size,
    )


def render(record: dict[str, Any]) -> str:
    cache = "with a CoreML cache" if record["coreml_cache"] else "without a CoreML cache"
    return (
        f"wheel: {record['wheel']}\nsha256: {record['sha256']}\n"
        f"({', '.join(record['models'])}: {record['files']} artefacts, {record['size']:,} bytes, "
        f"{cache})"
    )
