"""Runtime fixtures: one detector on the packaged models, a tampered copy of the models."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


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
