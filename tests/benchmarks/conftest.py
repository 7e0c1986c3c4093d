"""The benchmarks' fixtures: the packaged models as a schema-2 models dir the runtime serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.packaged import MODELS_ENV
from tests.conftest import PACKAGE_MODELS
from tests.runtime import schema2


@pytest.fixture(scope="session")
def schema2_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A schema-2 copy of `make models`' output (RetinaFace only)."""
    if not (PACKAGE_MODELS / "manifest.json").exists():
        pytest.fail(f"{PACKAGE_MODELS}/manifest.json is missing: run `make models` first")
    return schema2.convert(PACKAGE_MODELS, tmp_path_factory.mktemp("bench") / "models")


@pytest.fixture
def served(schema2_models: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Serve ``schema2_models`` here and in child processes ($RETINAFACE_COREML_MODELS_DIR)."""
    monkeypatch.setenv(MODELS_ENV, str(schema2_models))
    return schema2_models
