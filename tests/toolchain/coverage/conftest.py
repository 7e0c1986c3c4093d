"""Fixtures for the coverage tests: the real RetinaFace models (tiny graphs: coverage_graphs)."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from tests.toolchain.coverage.coverage_graphs import ROOT, SOURCE


@pytest.fixture(scope="session")
def source_model() -> Path:
    """The pinned RetinaFace source model (dynamic H/W); `toolchain fetch` makes it."""
    if not SOURCE.is_file():
        from retinaface_coreml_toolchain.fetch import FetchRequest, fetch_weights
        from retinaface_coreml_toolchain.recipe import load_recipe

        fetch_weights(load_recipe(ROOT / "models" / "retinaface.toml"), FetchRequest())
    return SOURCE


@pytest.fixture(scope="session")
def bucket_640(source_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 640x640 bucket made here with onnxsim, independent of the build's outputs."""
    import onnxsim

    model, ok = onnxsim.simplify(
        onnx.load(str(source_model)), overwrite_input_shapes={"input": [1, 3, 640, 640]}
    )
    assert ok
    path = tmp_path_factory.mktemp("bucket") / "640x640.onnx"
    onnx.save(model, str(path))
    return path
