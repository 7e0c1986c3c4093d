"""manifest.json schema 2 (docs/manifest.md): every packaged model, its buckets, the sha256 of
every file and the figures the build measured."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from retinaface_coreml.artifacts import MANIFEST_NAME, SCHEMA_VERSION, hash_tree


def build_manifest(
    *, folder: Path, models: dict[str, dict[str, Any]], versions: dict[str, str]
) -> dict[str, Any]:
    """The manifest record for the artefacts already staged in ``folder``."""
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "versions": versions,
        "files": hash_tree(folder, skip=MANIFEST_NAME),
        "models": dict(sorted(models.items())),
    }
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        record["source_date_epoch"] = int(epoch)
    return record


def model_record(
    *,
    name: str,
    source: dict[str, Any],
    batch_independent: bool,
    buckets: list[dict[str, Any]],
    provider_options: dict[str, str],
    options_digest: str,
    precompile: dict[str, Any],
    validation: dict[str, Any],
    coverage: dict[str, Any],
    detector: dict[str, Any] | None,
) -> dict[str, Any]:
    """One entry of ``models``: source I/O as ORT reports it, buckets, CoreML, figures."""
    cache = []
    # One precompile run is one (ORT, macOS major); a merged record (merge-caches) lists each.
    releases = precompile.get("releases") or [precompile]
    for release in releases if precompile.get("status") == "built" else []:
        if release.get("entries"):
            cache.append(
                {
                    "ort_version": release["ort_version"],
                    "macos_major": release["macos_major"],
                    "options_digest": release["options_digest"],
                    "entries": {
                        bucket: {k: v for k, v in entry.items() if k != "files"}
                        for bucket, entry in release["entries"].items()
                    },
                }
            )
    record: dict[str, Any] = {
        "name": name,
        "source": {k: source[k] for k in ("sha256", "size", "origin")},
        "inputs": source["inputs"],
        "outputs": source["outputs"],
        "batch_independent": batch_independent,
        "buckets": buckets,
        "coreml": {"provider_options": provider_options, "options_digest": options_digest},
        "coreml_cache": cache,
        "precompile": precompile,
        "validation": validation,
        "coverage": coverage,
    }
    if detector is not None:
        record["detector"] = detector
    return record
