"""What the harness runs against, pinned (the app's sdist, its helper package) and where it goes."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-compat"
REQUIREMENTS = ROOT / "compat" / "requirements.txt"
STANDIN_DIR = ROOT / "compat" / "standin"
# Fetched and unpacked here, never committed (/build/ is git-ignored).
BUILD_DIR = ROOT / "build" / "compat"

APP_VERSION = "1.4.1"
APP_SDIST = f"pyfaceau-{APP_VERSION}.tar.gz"
APP_SDIST_SHA256 = "b91721dfa66d7a06b5ead3720fae57bae94a0eb2dfc6241f297d8ee47d701282"
APP_DIR = BUILD_DIR / f"pyfaceau-{APP_VERSION}"
APP_MEMBER = f"pyfaceau-{APP_VERSION}/pyfaceau/detectors/retinaface.py"
APP_FILE = BUILD_DIR / APP_MEMBER

# The app's post-processing helpers (PriorBox, decode, decode_landm, py_cpu_nms, cfg_mnet).
# Installed without its dependencies: their import path needs only torch, numpy and cv2.
OPENFACE_VERSION = "0.1.26"
OPENFACE_WHEEL = f"openface_test-{OPENFACE_VERSION}-py3-none-any.whl"
OPENFACE_WHEEL_SHA256 = "770c888c38f14b34000ac702b100b1bbb580f7394b12bc8ea320a3ecb2208c8e"

# The app's session loads the same source weights our wheel is built from (`make models`).
SOURCE_MODEL = ROOT / "weights" / "retinaface_mobilenet025.onnx"
