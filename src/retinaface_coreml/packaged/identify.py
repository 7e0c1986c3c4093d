"""Is a model the caller gives onnxruntime one of the packaged sources? The bytes decide.

A path is hashed once per file version: the memory is keyed by (path, device, inode, size,
mtime_ns), so a file rewritten in place (new mtime or size) or replaced (new inode) is hashed
again and never taken for the packaged one it used to be. A file whose size no packaged source
has is not hashed at all.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

from retinaface_coreml.artifacts import (
    Manifest,
    ModelRecord,
    load_manifest,
    sha256_file,
)
from retinaface_coreml.errors import ArtifactError

log = logging.getLogger(__name__)

_hashes: dict[tuple[str, int, int, int, int], str] = {}
_lock = threading.Lock()
hash_count = 0
"""How many files this process hashed (the memory is tested by it)."""


def installed_manifest() -> Manifest | None:
    """The manifest serving packaged models, or None (logged) when there is none."""
    try:
        return load_manifest()
    except ArtifactError as exc:
        log.debug("no packaged models to serve: %s", exc)
        return None


def file_sha256(path: Path) -> str | None:
    """sha256 of the file at ``path``, remembered per file version; None when unreadable."""
    global hash_count
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path.resolve()), stat.st_dev, stat.st_size, stat.st_mtime_ns, stat.st_ino)
    with _lock:
        known = _hashes.get(key)
    if known is not None:
        return known
    try:
        digest = sha256_file(path)
    except OSError:
        return None
    after = path.stat()
    if (after.st_size, after.st_mtime_ns, after.st_ino) != (
        stat.st_size,
        stat.st_mtime_ns,
        stat.st_ino,
    ):
        return digest  # changed while hashed: correct for these bytes, not worth remembering
    with _lock:
        hash_count += 1
        _hashes[key] = digest
    return digest


def packaged_model(model: object, manifest: Manifest) -> ModelRecord | None:
    """The packaged model ``model`` (a path as str/PathLike, or bytes) is the source of."""
    sizes = manifest.source_sizes()
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        if len(data) not in sizes:
            return None
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
