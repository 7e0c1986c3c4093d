"""Errors raised by the runtime; each message names the file or value and the fix."""

from __future__ import annotations


class RetinaFaceError(Exception):
    """Base class of every error this package raises on purpose."""


class ArtifactError(RetinaFaceError):
    """A packaged artifact is missing, truncated or differs from manifest.json."""


class UnknownBucketError(RetinaFaceError, ValueError):
    """A bucket name that the installed manifest does not list."""


class ImageFormatError(RetinaFaceError, ValueError):
    """An image array the detector cannot take (dtype, channels, empty)."""


class BackendError(RetinaFaceError, ValueError):
    """A backend name that is unknown, or not available in this onnxruntime build."""
