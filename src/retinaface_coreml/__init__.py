"""retinaface-coreml: packaged ONNX models (RetinaFace first) that start instantly.

Importing the package loads only its errors: the detector classes, the session, ``install`` and
the cache machinery load on first use (module ``__getattr__``, PEP 562).

What loads on the way to the first detection is kept lean (``benchmarks/startup.py``): its
records are ``typing.NamedTuple`` classes (0.2 ms each to define; a frozen dataclass, 0.8 ms),
and logging goes through ``lazy_logging`` (``logging`` itself is 6 ms of import).
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib
from typing import TYPE_CHECKING

from retinaface_coreml.errors import (
    ArtifactError,
    BackendError,
    ImageFormatError,
    RetinaFaceError,
    UnknownBucketError,
)

if TYPE_CHECKING:
    from retinaface_coreml.adapter import ONNXRetinaFaceDetector
    from retinaface_coreml.detector import FaceDetector
    from retinaface_coreml.faces import Face
    from retinaface_coreml.optimized import OptimizedFaceDetector
    from retinaface_coreml.packaged.install import install, uninstall
    from retinaface_coreml.packaged.session import InferenceSession

_LAZY = {
    "Face": "retinaface_coreml.faces",
    "FaceDetector": "retinaface_coreml.detector",
    "InferenceSession": "retinaface_coreml.packaged.session",
    "ONNXRetinaFaceDetector": "retinaface_coreml.adapter",
    "OptimizedFaceDetector": "retinaface_coreml.optimized",
    "install": "retinaface_coreml.packaged.install",
    "uninstall": "retinaface_coreml.packaged.install",
}

__all__ = [
    "ArtifactError",
    "BackendError",
    "Face",
    "FaceDetector",
    "ImageFormatError",
    "InferenceSession",
    "ONNXRetinaFaceDetector",
    "OptimizedFaceDetector",
    "RetinaFaceError",
    "UnknownBucketError",
    "__version__",
    "install",
    "uninstall",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'retinaface_coreml' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
