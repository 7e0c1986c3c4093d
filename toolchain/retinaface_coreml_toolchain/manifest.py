"""manifest.json: the sha256 of every packaged file plus the figures the build measured."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from retinaface_coreml.artifacts import MANIFEST_NAME, hash_tree

SCHEMA_VERSION = 1  # this build writes schema 1; the runtime reads schema 2 (docs/manifest.md)


def build_manifest(
    *,
    folder: Path,
    model: dict[str, Any],
    buckets: list[dict[str, Any]],
    versions: dict[str, str],
    validation: dict[str, Any],
    coverage: dict[str, Any],
    coreml_cache: dict[str, Any],
) -> dict[str, Any]:
    """The manifest record for the artefacts already staged in ``folder``."""
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": model,
        "buckets": buckets,
        "files": hash_tree(folder, skip=MANIFEST_NAME),
        "versions": versions,
        "validation": validation,
        "coverage": coverage,
        "coreml_cache": coreml_cache,
    }
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        record["source_date_epoch"] = int(epoch)
    return record
