"""`toolchain merge-caches`: one wheel with the CoreML entries of several ORT releases.

Each macOS CI job (one per ORT release) runs ``precompile`` and uploads what it wrote: a folder
with ``precompile.json`` and ``coreml/<ort>/<macOS major>/<options digest>/<key>/``. This step
checks every folder, refuses any disagreement with one line (exit 2) before writing anything,
then publishes the union as ``models/build/coreml/`` plus one merged ``precompile.json`` and runs
the package step, which ships them. Refused:

- a record that is not ``built``, or whose options digest is not its provider options' digest;
- provider options other than the recipe's, or another CPU architecture than the others';
- an entry whose key is not the key of the recipe's bucket of that name (other bucket models);
- an entry folder whose files differ from the sha256 its record lists, or files no record lists;
- the same entry (same ORT, macOS, digest and key) from two folders with different bytes.

The runtime already picks a shipped entry by ORT version, options digest and macOS major from
the file paths alone (``retinaface_coreml.packaged.cache.matching_shipped``); nothing changes there.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from retinaface_coreml import coreml
from retinaface_coreml.packaged.cache import hash_files
from retinaface_coreml_toolchain.errors import ToolchainError
from retinaface_coreml_toolchain.files import staging_dir, write_json
from retinaface_coreml_toolchain.precompile import cache_root, record_path
from retinaface_coreml_toolchain.recipe import Recipe
from retinaface_coreml_toolchain.steplog import step
from retinaface_coreml_toolchain.wheel_tags import pin_requested, version_key

RECORD_NAME = "precompile.json"
"""What ``precompile`` writes beside ``coreml/`` (``record_path``), in every merged folder."""


_RELEASE = re.compile(r"[0-9]+(\.[0-9]+)*")


class CacheMergeError(ToolchainError):
    """Entries from several macOS builds cannot go into one wheel together."""


@dataclass(frozen=True, kw_only=True)
class MergeRequest:
    """``sources``: folders of ``precompile.json`` + ``coreml/``, e.g. ``entries/ort-1.23.2``."""

    sources: tuple[Path, ...]


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One shipped entry, e.g. dir ``coreml/1.23.2/14/5c0f1b7a9e21/retinaface640x640ab12...``."""

    source: Path
    bucket: str
    record: dict[str, Any]

    @property
    def dir(self) -> str:
        return str(self.record["dir"])


def _load(source: Path) -> dict[str, Any]:
    path = source / RECORD_NAME
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise CacheMergeError(
            f"{path}: missing; each folder must hold a macOS job's precompile.json and coreml/"
        ) from None
    except (OSError, ValueError) as exc:
        raise CacheMergeError(f"{path}: unreadable ({exc}); upload it again") from None
    if not isinstance(record, dict) or record.get("status") != "built":
        why = record.get("reason") if isinstance(record, dict) else "not a record"
        raise CacheMergeError(f"{path}: no entries were built ({why}); merge macOS builds only")
    return record


def _check_record(
    source: Path, record: dict[str, Any], options: dict[str, str], keys: dict[str, str]
) -> list[Entry]:
    """The record's entries, once its options, digest, keys and files are checked."""
    path = source / RECORD_NAME
    try:
        recorded = {str(k): str(v) for k, v in record["provider_options"].items()}
        digest, ort, macos = record["options_digest"], record["ort_version"], record["macos_major"]
        entries = dict(record["entries"])
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise CacheMergeError(f"{path}: not a precompile record ({exc!r})") from None
    # The parts of a path below coreml/: an edited record must not point elsewhere.
    if not (_RELEASE.fullmatch(str(ort)) and str(macos).isdigit()):
        raise CacheMergeError(f"{path}: ORT {ort!r} / macOS {macos!r} is not a release; rebuild it")
    if digest != coreml.options_digest(recorded):
        raise CacheMergeError(
            f"{path}: options digest {digest} is not the digest of its provider options "
            f"{recorded} ({coreml.options_digest(recorded)}); the record was edited: rebuild it"
        )
    if recorded != options:
        raise CacheMergeError(
            f"{path}: built with CoreML options {recorded}, the recipe's are {options}; "
            "rebuild that job's entries with this recipe"
        )
    found = []
    for bucket, entry in sorted(entries.items()):
        key = entry.get("key") if isinstance(entry, dict) else None
        if key is None or keys.get(bucket) != key:
            raise CacheMergeError(
                f"{path}: entry {key} for bucket {bucket} matches no bucket model of this build "
                f"(its key is {keys.get(bucket, 'none: no such bucket')}); rebuild that job's "
                "entries from the same bucket models"
            )
        expected_dir = f"coreml/{ort}/{macos}/{digest}/{key}"
        if entry.get("dir") != expected_dir:
            raise CacheMergeError(f"{path}: entry {bucket} is at {entry.get('dir')}, not at "
                                  f"{expected_dir}; the record was edited: rebuild it")  # fmt: skip
        on_disk = {
            f"{expected_dir}/{rel}": sha for rel, sha in hash_files(source / expected_dir).items()
        }
        if on_disk != entry.get("files"):
            changed = sorted(set(on_disk.items()) ^ set((entry.get("files") or {}).items()))
            raise CacheMergeError(
                f"{source / changed[0][0]}: differs from the sha256 {RECORD_NAME} lists "
                f"(or is missing or unlisted); upload that job's entries again"
            )
        found.append(Entry(source=source, bucket=bucket, record=entry))
    listed = {PurePosixPath(e.dir) for e in found}
    for folder in sorted((source / "coreml").glob("*/*/*/*")):
        rel = PurePosixPath(folder.relative_to(source).as_posix())
        if folder.is_dir() and rel not in listed:
            raise CacheMergeError(f"{folder}: an entry {RECORD_NAME} does not list; remove it")
    return found


def merge_caches(
    recipe: Recipe, request: MergeRequest, *, env: Mapping[str, str]
) -> dict[str, Any]:
    """Check every source, publish their union into the build folder; return the record."""
    from retinaface_coreml_toolchain.precompile import _cache_keys

    if not request.sources:
        raise CacheMergeError("merge-caches: name at least one folder of precompile output")
    options = dict(recipe.coreml_options or coreml.DEFAULT_OPTIONS)
    keys = _cache_keys(recipe)
    records = {source: _load(source) for source in request.sources}
    machines = {str(r.get("machine")) for r in records.values()}
    if len(machines) != 1:
        raise CacheMergeError(f"the entries were built on {', '.join(sorted(machines))}: one "
                              "wheel carries one CPU architecture; merge each apart")  # fmt: skip
    merged: dict[str, Entry] = {}
    for source, record in records.items():
        for entry in _check_record(source, record, options, keys):
            earlier = merged.setdefault(entry.dir, entry)
            if earlier.record["files"] != entry.record["files"]:
                raise CacheMergeError(
                    f"{entry.dir}: {earlier.source} and {entry.source} hold different bytes for "
                    "the same ORT, macOS, options and key; keep one of the two builds"
                )
    releases = sorted({(str(r["ort_version"]), str(r["macos_major"])) for r in records.values()})
    ort_versions = sorted({ort for ort, _ in releases}, key=version_key)
    if pin_requested(env) and len(ort_versions) > 1:
        raise CacheMergeError(
            f"an exact onnxruntime pin needs entries of one release, these are for "
            f"{', '.join(ort_versions)}; merge without RETINAFACE_COREML_PIN_ORT"
        )
    digest = coreml.options_digest(options)
    with step("merge-caches"), staging_dir(cache_root(recipe)) as tmp:
        for entry in merged.values():
            target = tmp / PurePosixPath(entry.dir).relative_to("coreml")
            shutil.copytree(entry.source / entry.dir, target)
    majors = sorted({macos for _, macos in releases}, key=int)
    (machine,) = machines
    record = {
        "status": "built",
        "reason": "",
        "summary": (
            f"{len(merged)} entries for onnxruntime {', '.join(ort_versions)} on macOS "
            f"{', '.join(majors)} ({machine}), options {digest}"
        ),
        # ``ort_version`` as `info` prints it; ``releases`` lists each build. The lowest macOS
        # major tags the wheel (an entry compiled on macOS 14 also serves 15).
        "ort_version": ", ".join(ort_versions),
        "macos_major": majors[0],
        "machine": machine,
        "provider_options": dict(sorted(options.items())),
        "options_digest": digest,
        "releases": [{"ort_version": o, "macos_major": m} for o, m in releases],
        "entries": {
            path: {**entry.record, "bucket": entry.bucket} for path, entry in sorted(merged.items())
        },
    }
    write_json(record_path(recipe), record)
    return record


@dataclass(frozen=True, kw_only=True)
class MergeResult:
    merge: dict[str, Any]
    package: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"merge": self.merge, "package": self.package}


def merge_into_wheel(
    recipe: Recipe, request: MergeRequest, *, env: Mapping[str, str]
) -> MergeResult:
    """Merge the sources into the build folder, then run the package step on the union."""
    from retinaface_coreml_toolchain.package import build_wheel

    merged = merge_caches(recipe, request, env=env)
    return MergeResult(merge=merged, package=build_wheel(recipe).to_dict())


def render(record: dict[str, Any]) -> str:
    """One line per shipped entry, the summary, then the wheel."""
    merge, wheel = record["merge"], record["package"]
    lines = [f"{e['bucket']:<9} {path}" for path, e in merge["entries"].items()]
    lines += [merge["summary"], f"wheel:  {wheel['wheel']}", f"sha256: {wheel['sha256']}"]
    return "\n".join(lines)
