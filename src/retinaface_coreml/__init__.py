"""retinaface-coreml: a RetinaFace (mobilenet0.25) face detector that starts instantly."""

from __future__ import annotations

__version__ = "0.1.0"

from retinaface_coreml.adapter import ONNXRetinaFaceDetector
from retinaface_coreml.detector import FaceDetector
from retinaface_coreml.errors import (
    ArtifactError,
    BackendError,
    ImageFormatError,
    RetinaFaceError,
    UnknownBucketError,
)
from retinaface_coreml.faces import Face
from retinaface_coreml.optimized import OptimizedFaceDetector

__all__ = [
    "ArtifactError",
    "BackendError",
    "Face",
    "FaceDetector",
    "ImageFormatError",
    "ONNXRetinaFaceDetector",
    "OptimizedFaceDetector",
    "RetinaFaceError",
    "UnknownBucketError",
    "__version__",
]
