"""Is a model the caller gives onnxruntime one of the packaged sources? The bytes decide.

A path is hashed once per file version, across processes (hash_memory.py): a file rewritten in
place or replaced is hashed again and never taken for the packaged one it used to be. A file
whose size no packaged source has is not hashed at all.
"""

from __future__ import annotations

import os
from pathlib import Path

from retinaface_coreml import hash_memory
from retinaface_coreml.artifacts import Manifest, ModelRecord, load_manifest
from retinaface_coreml.errors import ArtifactError
from retinaface_coreml.lazy_logging import get_logger

log = get_logger(__name__)


def installed_manifest() -> Manifest | None:
    """The manifest serving packaged models, or None (logged) when there is none."""
    try:
        return load_manifest()
    except ArtifactError as exc:
        log.debug("no packaged models to serve: %s", exc)
        return None


def file_sha256(path: Path) -> str | None:
    """sha256 of the file at ``path``, remembered per file version; None when unreadable."""
    try:
        return hash_memory.file_sha256(path)
    except OSError:
        return None


def packaged_model(model: object, manifest: Manifest) -> ModelRecord | None:
    """The packaged model ``model`` (a path as str/PathLike, or bytes) is the source of."""
    sizes = manifest.source_sizes()
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        if len(data) not in sizes:
            return None
        import hashlib  # here: only bytes of a packaged source's size are hashed

        return manifest.by_source(hashlib.sha256(data).hexdigest())
    if isinstance(model, (str, os.PathLike)):
        path = Path(os.fspath(model))
        try:
            if path.stat().st_size not in sizes:
                return None
        except OSError:
            return None
        digest = file_sha256(path)
        return manifest.by_source(digest) if digest is not None else None
    return None
