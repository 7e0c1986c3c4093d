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


def make_project(target: Path) -> Path:
    """A project tree in ``target``: recipe, fetched weights, photos, pyproject and sources."""
    (target / "models").mkdir(parents=True)
    shutil.copy(ROOT / "models" / "retinaface.toml", target / "models" / "retinaface.toml")
    (target / "weights").mkdir()
    shutil.copy(WEIGHTS, target / "weights" / WEIGHTS.name)
    (target / "models" / "build" / "retinaface").mkdir(parents=True)
    shutil.copy(BUILD / "source.json", target / "models" / "build" / "retinaface")
    (target / "tests" / "data").mkdir(parents=True)
    (target / "tests" / "data" / "faces").symlink_to(ROOT / "tests" / "data" / "faces")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, target / name)
    shutil.copytree(
        ROOT / "src",
        target / "src",
        ignore=shutil.ignore_patterns("models", "__pycache__", "*.egg-info"),
    )
    return target


def copy_build(project: Path) -> Path:
    """The repository's RetinaFace build outputs (simplify, validate, coverage) into
    ``project``."""
    target = project / "models" / "build" / "retinaface"
    for name in ("simplify.json", "validation.json", "coverage.json"):
        shutil.copy(BUILD / name, target / name)
    shutil.copytree(BUILD / "buckets", target / "buckets")
    return project


def only_buckets(project: Path, names: tuple[str, ...]) -> None:
    """Cut RetinaFace's recipe to the buckets ``names``: the build stays real but small."""
    path = project / "models" / "retinaface.toml"
    text = path.read_text()
    head, rest = text.split("[[buckets]]", 1)
    tail = rest[rest.index("[validate]") :]
    buckets = ""
    for name in names:
        h, w = name.split("x")
        buckets += f'[[buckets]]\nname = "{name}"\ninputs = {{ input = [1, 3, {h}, {w}] }}\n\n'
    path.write_text(head + buckets + tail)


def add_convnet(project: Path, *, name: str = "convnet"):  # -> Recipe
    """A small generated non-detector model: ``toolchain add``, then built up to precompile
    (fetch, simplify, validate, coverage; precompile as the host allows)."""
    from click.testing import CliRunner

    from retinaface_coreml_toolchain.cli import cli
    from retinaface_coreml_toolchain.pipeline import build_model
    from retinaface_coreml_toolchain.recipe import load_recipe
    from tests.toolchain.generated import conv_model

    source = conv_model(project / "weights" / f"{name}.onnx", size=8)
    added = CliRunner().invoke(
        cli, ["--recipe", str(project / "models" / "retinaface.toml"), "add", name, str(source)]
    )
    assert added.exit_code == 0, added.output
    recipe = load_recipe(project / "models" / f"{name}.toml")
    build_model(recipe)
    return recipe


@pytest.fixture
def project(tmp_path: Path, source_weights: Path) -> Path:
    """A project tree in tmp_path: recipe, fetched weights, photos, pyproject and sources."""
    return make_project(tmp_path)


@pytest.fixture
def built(project: Path) -> Path:
    """The project with the repository's RetinaFace build outputs (simplify, validate,
    coverage) copied in."""
    return copy_build(project)


def build_files(project: Path) -> set[str]:
    """Every path below models/build, relative, for "nothing new was written" checks."""
    build = project / "models" / "build"
    return {p.relative_to(build).as_posix() for p in build.rglob("*")}
