"""Errors a user can act on; each carries the exit code the CLI returns."""

from __future__ import annotations


class ToolchainError(Exception):
    """Base class: the message is one line naming the file and the fix."""

    return_code = 2


class RecipeError(ToolchainError):
    """The recipe (models/retinaface.toml) is missing or malformed."""


class FetchError(ToolchainError):
    """The weights could not be downloaded or extracted."""


class ChecksumError(ToolchainError):
    """A file's sha256 differs from the pinned one."""


class ModelError(ToolchainError):
    """An ONNX file is unreadable, truncated or not a RetinaFace model."""


class MissingInputError(ToolchainError):
    """A step's input (the previous step's output) does not exist yet."""


class ValidationFailed(ToolchainError):
    """A bucket model does not reproduce the source model within tolerance."""

    return_code = 1


class GateFailed(ToolchainError):
    """A figure fell short of a build gate (coverage, partitions)."""

    return_code = 1


class PackageError(ToolchainError):
    """The wheel could not be built."""
