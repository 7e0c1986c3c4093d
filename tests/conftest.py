"""Shared fixtures: the repository, the real photos, the built artefacts; a CoreML guard."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FACES_DIR = ROOT / "tests" / "data" / "faces"
PACKAGE_MODELS = ROOT / "src" / "retinaface_coreml" / "models"

# Face counts per photo, from tests/data/faces/SOURCES.md (counted by a person).
EXPECTED_FACES = {
    "faceapi_sample1.jpg": 3,
    "faceapi_sample2.jpg": 3,
    "faceapi_sample3.jpg": 3,
    "faceapi_sample4.jpg": 4,
    "faceapi_sample5.jpg": 5,
    "faceapi_sample6.jpg": 4,
    "matplotlib_grace_hopper.jpg": 1,
    "skimage_astronaut.png": 1,
    "skimage_camera.png": 1,
    "skimage_chelsea.png": 0,
}


def coreml_available() -> bool:
    import onnxruntime

    return "CoreMLExecutionProvider" in onnxruntime.get_available_providers()


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    return FACES_DIR


def reference_boxes() -> dict[str, list[list[int]]]:
    """The approximate boxes table of SOURCES.md, parsed: file name -> [[x1, y1, x2, y2], ...]."""
    boxes: dict[str, list[list[int]]] = {}
    text = (FACES_DIR / "SOURCES.md").read_text()
    section = text.split("## Approximate face boxes", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] in EXPECTED_FACES:
            found = re.findall(r"\[(\d+),(\d+),(\d+),(\d+)\]", cells[1])
            boxes[cells[0]] = [[int(v) for v in b] for b in found]
    return boxes


@pytest.fixture(scope="session")
def package_models() -> Path:
    """The models directory `make models` fills; the suite needs it (make test builds it)."""
    if not (PACKAGE_MODELS / "manifest.json").exists():
        pytest.fail(f"{PACKAGE_MODELS}/manifest.json is missing: run `make models` first")
    return PACKAGE_MODELS


@pytest.fixture(autouse=True)
def _no_coreml_on_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if a test asks ORT for the CoreML EP where it does not exist."""
    if sys.platform == "darwin":
        return
    import onnxruntime

    real = onnxruntime.InferenceSession.__init__

    def guarded(self, *args, **kwargs):
        providers = kwargs.get("providers") or (args[2] if len(args) > 2 else None) or []
        names = [p[0] if isinstance(p, tuple) else p for p in providers]
        if "CoreMLExecutionProvider" in names:
            raise AssertionError("a test asked for CoreMLExecutionProvider on a non-macOS host")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(onnxruntime.InferenceSession, "__init__", guarded)


def write_landms_export(source: Path, target: Path, *, opset: int = 15) -> Path:
    """``source`` as the app's export scripts make theirs: outputs ``loc``, ``conf`` and
    ``landms`` (not ``landmarks``), opset 12 or 15, dynamic batch, height and width.

    The same network in other bytes, so the wheel does not recognise it as its own source.
    """
    import onnx
    from onnx import version_converter

    model = version_converter.convert_version(onnx.load(str(source)), opset)
    for node in model.graph.node:
        node.output[:] = ["landms" if o == "landmarks" else o for o in node.output]
    for output in model.graph.output:
        if output.name == "landmarks":
            output.name = "landms"
    onnx.save(model, str(target))
    return target


def write_relu_onnx(target: Path, *, input_name: str = "x", output_name: str = "y") -> Path:
    """A valid one-node ONNX model that is not RetinaFace."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", [input_name], [output_name])],
        "not_retinaface",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    onnx.save(helper.make_model(graph), str(target))
    return target
