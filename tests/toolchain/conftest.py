"""A throwaway copy of the project for steps that write: the real recipe, weights and photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT

WEIGHTS = ROOT / "weights" / "retinaface_mobilenet025.onnx"
BUILD = ROOT / "models" / "build" / "retinaface"  # RetinaFace's build outputs


@pytest.fixture(scope="session")
def source_weights() -> Path:
    """The fetched source model (`make test` runs `make models` first, which fetches it)."""
    if not WEIGHTS.exists():
        pytest.fail(f"{WEIGHTS} is missing: run `make models` (or `toolchain fetch`) first")
    return WEIGHTS


@pytest.fixture
def project(tmp_path: Path, source_weights: Path) -> Path:
    """A project tree in tmp_path: recipe, fetched weights, photos, pyproject and sources."""
    (tmp_path / "models").mkdir()
    shutil.copy(ROOT / "models" / "retinaface.toml", tmp_path / "models" / "retinaface.toml")
    (tmp_path / "weights").mkdir()
    shutil.copy(source_weights, tmp_path / "weights" / source_weights.name)
    (tmp_path / "models" / "build" / "retinaface").mkdir(parents=True)
    shutil.copy(BUILD / "source.json", tmp_path / "models" / "build" / "retinaface")
    (tmp_path / "tests" / "data").mkdir(parents=True)
    (tmp_path / "tests" / "data" / "faces").symlink_to(ROOT / "tests" / "data" / "faces")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(
        ROOT / "src",
        tmp_path / "src",
        ignore=shutil.ignore_patterns("models", "__pycache__", "*.egg-info"),
    )
    return tmp_path


@pytest.fixture
def built(project: Path) -> Path:
    """The project with the repository's RetinaFace build outputs (simplify, validate,
    coverage) copied in."""
    target = project / "models" / "build" / "retinaface"
    for name in ("simplify.json", "validation.json", "coverage.json"):
        shutil.copy(BUILD / name, target / name)
    shutil.copytree(BUILD / "buckets", target / "buckets")
    return project


def build_files(project: Path) -> set[str]:
    """Every path below models/build, relative, for "nothing new was written" checks."""
    build = project / "models" / "build"
    return {p.relative_to(build).as_posix() for p in build.rglob("*")}
