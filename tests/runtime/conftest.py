"""Runtime fixtures: the packaged models as a schema-2 models dir, a detector on them, a
tampered copy of them.

``package_models`` is a copy of what ``make models`` built (manifest schema 2) with two
generated models packaged beside RetinaFace (tests/runtime/schema2.py), and every
runtime test (and each process it starts) serves that directory through
``RETINAFACE_COREML_MODELS_DIR``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from retinaface_coreml.artifacts import MODELS_ENV
from tests.conftest import PACKAGE_MODELS
from tests.runtime import schema2


@pytest.fixture(scope="session")
def schema2_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the schema-2 models dir, the folder of the generated models' sources)."""
    if not (PACKAGE_MODELS / "manifest.json").exists():
        pytest.fail(f"{PACKAGE_MODELS}/manifest.json is missing: run `make models` first")
    base = tmp_path_factory.mktemp("schema2")
    models = schema2.convert(PACKAGE_MODELS, base / "models", generated=base / "sources")
    return models, base / "sources"


@pytest.fixture(scope="session")
def package_models(schema2_dirs: tuple[Path, Path]) -> Path:
    return schema2_dirs[0]


@pytest.fixture(scope="session")
def generated_sources(schema2_dirs: tuple[Path, Path]) -> Path:
    """``<dir>/convnet.onnx`` and ``<dir>/twoinputs.onnx``: sources of packaged models."""
    return schema2_dirs[1]


# Package scope: the variable must be gone before the toolchain's tests start processes from an
# installed wheel, which would otherwise serve this directory instead of their own.
@pytest.fixture(scope="package", autouse=True)
def _serve_package_models(package_models: Path) -> Iterator[None]:
    old = os.environ.get(MODELS_ENV)
    os.environ[MODELS_ENV] = str(package_models)
    yield
    if old is None:
        os.environ.pop(MODELS_ENV, None)
    else:
        os.environ[MODELS_ENV] = old


@pytest.fixture(scope="session", autouse=True)
def _private_cache_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suite's user cache root (hash memory, CoreML entries): never the real one."""
    from retinaface_coreml.user_cache import ENV_VAR

    old = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = str(tmp_path_factory.mktemp("user-cache"))
    yield
    if old is None:
        os.environ.pop(ENV_VAR, None)
    else:
        os.environ[ENV_VAR] = old


@pytest.fixture(scope="session")
def detector(package_models: Path):
    from retinaface_coreml import FaceDetector

    return FaceDetector(models_dir=package_models)


@pytest.fixture
def tampered_models(package_models: Path, tmp_path: Path) -> Callable[[str], Path]:
    """Copy the models dir to tmp_path and flip bytes in the middle of ``file``."""

    def make(file: str) -> Path:
        copy = tmp_path / "models"
        if not copy.exists():
            shutil.copytree(package_models, copy)
        target = copy / file
        data = bytearray(target.read_bytes())
        middle = len(data) // 2
        data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
        target.write_bytes(bytes(data))
        return copy

    return make
