"""The runtime loads none of the toolchain's modules (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import FACES_DIR, ROOT

TOOLCHAIN_ONLY = ["onnx", "onnxsim", "coremltools", "click", "retinaface_coreml_toolchain"]

SCRIPT = f"""
import json, sys
import cv2
import retinaface_coreml
after_import = sorted(sys.modules)
detector = retinaface_coreml.FaceDetector()  # the models dir: $RETINAFACE_COREML_MODELS_DIR
faces = detector.detect(cv2.imread({str(FACES_DIR / "faceapi_sample1.jpg")!r}))
rows, _ = retinaface_coreml.ONNXRetinaFaceDetector().detect_faces(
    cv2.imread({str(FACES_DIR / "skimage_astronaut.png")!r}))
from retinaface_coreml.cli import main
code = main(["info", "--json"])
print(json.dumps({{"faces": len(faces), "rows": len(rows), "code": code,
                  "after_import": after_import, "after_detect": sorted(sys.modules)}}))
"""


def test_runtime_imports_no_toolchain_module(package_models) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert (result["faces"], result["rows"], result["code"]) == (3, 1, 0)

    def loaded(modules: list[str], name: str) -> bool:
        return any(m == name or m.startswith(name + ".") for m in modules)

    assert [m for m in TOOLCHAIN_ONLY if loaded(result["after_detect"], m)] == []
    # Importing the package is cheap: the cache helpers are imported only when needed.
    assert [m for m in ("platformdirs", "filelock") if loaded(result["after_import"], m)] == []
    assert loaded(result["after_detect"], "onnxruntime")  # sanity: the check sees imports


def test_importing_the_package_loads_none_of_its_machinery() -> None:
    """``import retinaface_coreml`` loads its errors only: the app classes, the session
    adapter, the source-model check, the cache and compile modules load on first use."""
    script = (
        "import json, sys, retinaface_coreml; before = sorted(sys.modules); "
        "retinaface_coreml.FaceDetector; retinaface_coreml.install; "
        "print(json.dumps([before, sorted(sys.modules)]))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    before, after = json.loads(done.stdout.splitlines()[-1])
    ours = sorted(m for m in before if m.startswith("retinaface_coreml"))
    assert ours == ["retinaface_coreml", "retinaface_coreml.errors"]
    assert not any(m == "onnxruntime" or m == "numpy" or m == "cv2" for m in before)
    # Touching the names loads them: the check sees lazy imports happen.
    assert {"retinaface_coreml.detector", "retinaface_coreml.packaged.install"} <= set(after)


def test_onnx_is_importable_here_so_the_check_can_fail() -> None:
    # If onnx were missing from this environment the test above would pass vacuously.
    import importlib.util

    assert importlib.util.find_spec("onnx") is not None


def test_the_first_detection_imports_no_logging(package_models) -> None:
    """Nothing on the path to the first face imports ``logging`` (6 ms of startup): the runtime
    logs through ``lazy_logging``, which imports it only for a record someone could see. Nor
    does importing the detector load ``hashlib`` (4-5 ms of OpenSSL): the bucket's hash loads
    it on a thread beside onnxruntime's session (``Manifest.load_checked``)."""
    script = (
        "import sys, cv2\n"
        "from retinaface_coreml import FaceDetector\n"
        "imported = 'hashlib' in sys.modules\n"
        f"faces = FaceDetector().detect(cv2.imread({str(FACES_DIR / 'faceapi_sample1.jpg')!r}))\n"
        "print(len(faces), 'logging' in sys.modules, imported)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "False", "False"]
