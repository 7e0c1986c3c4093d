"""Errors of `toolchain optimize`; each is one line and exit code 2."""

from __future__ import annotations

from retinaface_coreml_toolchain.errors import ToolchainError


class InputShapeError(ToolchainError):
    """An --input-shape names no model input, has the wrong rank, or is malformed."""


class CheckerError(ToolchainError):
    """The input model fails the ONNX checker."""


class EqualityBroken(ToolchainError):
    """A pass changed the model's outputs beyond the tolerance; it was left out."""
