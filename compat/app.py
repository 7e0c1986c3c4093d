"""Load the app's ``pyfaceau/detectors/retinaface.py`` by file path, unmodified.

The file imports ``openface.Pytorch_Retinaface`` (installed from openface-test), torch, and the
unpublished ``performance_profiler``, for which ``compat/standin/`` goes on ``sys.path``. Before
loading, the bytes on disk are compared with the member of the pinned sdist, so what runs is
exactly what pyfaceau 1.4.1 ships.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import tarfile
from types import ModuleType

from compat import pins

MODULE_NAME = "pyfaceau_app_retinaface"


class AppUnavailableError(Exception):
    """The app's file is missing or not the pinned one; the message says how to fetch it."""


def app_file_sha256() -> str:
    """sha256 of the app file as shipped in the pinned sdist; raises if the copy on disk differs."""
    sdist = pins.BUILD_DIR / pins.APP_SDIST
    if not pins.APP_FILE.exists() or not sdist.exists():
        raise AppUnavailableError(
            f"{pins.APP_FILE}: missing; run `make compat` (or python3 -m compat.setup_env)"
        )
    with tarfile.open(sdist) as archive:
        member = archive.extractfile(pins.APP_MEMBER)
        shipped = member.read() if member else b""
    if pins.APP_FILE.read_bytes() != shipped:
        raise AppUnavailableError(
            f"{pins.APP_FILE}: differs from {pins.APP_MEMBER} in {sdist}; delete "
            f"{pins.APP_DIR} and rerun `make compat`"
        )
    return hashlib.sha256(shipped).hexdigest()


def load_app() -> ModuleType:
    """The app's module, e.g. ``load_app().ONNXRetinaFaceDetector``."""
    if MODULE_NAME in sys.modules:
        return sys.modules[MODULE_NAME]
    app_file_sha256()
    if str(pins.STANDIN_DIR) not in sys.path:
        sys.path.append(str(pins.STANDIN_DIR))
    spec = importlib.util.spec_from_file_location(MODULE_NAME, pins.APP_FILE)
    if spec is None or spec.loader is None:
        raise AppUnavailableError(f"{pins.APP_FILE}: cannot be loaded as a module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module
