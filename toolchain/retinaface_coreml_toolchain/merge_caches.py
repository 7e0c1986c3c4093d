"""`toolchain merge-caches`: one wheel with the CoreML entries of several ORT releases.

Each macOS CI job (one per ORT release) runs ``precompile`` and uploads what it wrote for every
model, laid out as ``models/build/``: a folder with ``<model>/precompile.json`` and
``<model>/coreml/<ort>/<macOS major>/<options digest>/<key>/`` per model. This step checks every
folder against this build's recipes, refuses any disagreement with one line (exit 2) before
writing anything, then publishes, per model, the union as ``models/build/<model>/coreml/`` plus
one merged ``precompile.json`` (one record per (ORT, macOS major) under ``releases``) and runs the
package step on every model, which ships them. Refused:

- a folder without a record for a model of this build, or with a model this build has no recipe
  for;
- a record that is not ``built``, or whose options digest is not its provider options' digest;
- provider options other than the model's recipe's, or another CPU architecture than the others';
- an entry whose key is not the key of the model's bucket of that name (other bucket models);
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
    """``sources``: one folder per macOS job, e.g. ``entries/ort-1.23.2`` holding
    ``retinaface/precompile.json`` and ``retinaface/coreml/`` (and so on per model)."""

    sources: tuple[Path, ...]


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One shipped entry, e.g. dir ``coreml/1.23.2/14/5c0f1b7a9e21/retinaface640x640ab12...``."""

    folder: Path  # the model's folder in the source, e.g. entries/ort-1.23.2/retinaface
    bucket: str
    release: tuple[str, str]  # (ORT version, macOS major)
    record: dict[str, Any]

    @property
    def dir(self) -> str:
        return str(self.record["dir"])


def _load(folder: Path) -> dict[str, Any]:
    path = folder / RECORD_NAME
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise CacheMergeError(
            f"{path}: missing; each folder must hold a macOS job's <model>/precompile.json and "
            "<model>/coreml/ for every model of this build"
        ) from None
    except (OSError, ValueError) as exc:
        raise CacheMergeError(f"{path}: unreadable ({exc}); upload it again") from None
    if not isinstance(record, dict) or record.get("status") != "built":
        why = record.get("reason") if isinstance(record, dict) else "not a record"
        raise CacheMergeError(f"{path}: no entries were built ({why}); merge macOS builds only")
    return record


def _check_models(source: Path, recipes: list[Recipe]) -> None:
    """Every folder in ``source`` is a model of this build (the rest would be dropped silently)."""
    names = {r.name for r in recipes}
    if not source.is_dir():
        raise CacheMergeError(f"{source}: not a folder of a macOS job's precompile output")
    for child in sorted(source.iterdir()):
        if child.name not in names:
            raise CacheMergeError(
                f"{child}: not a model of this build (its models: {', '.join(sorted(names))}); "
                "merge with the same recipes (--models) or remove it"
            )


def _check_record(
    folder: Path, record: dict[str, Any], options: dict[str, str], keys: dict[str, str]
) -> list[Entry]:
    """The record's entries, once its options, digest, keys and files are checked."""
    path = folder / RECORD_NAME
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
            f"{expected_dir}/{rel}": sha for rel, sha in hash_files(folder / expected_dir).items()
        }
        if on_disk != entry.get("files"):
            changed = sorted(set(on_disk.items()) ^ set((entry.get("files") or {}).items()))
            raise CacheMergeError(
                f"{folder / changed[0][0]}: differs from the sha256 {RECORD_NAME} lists "
                f"(or is missing or unlisted); upload that job's entries again"
            )
        found.append(Entry(folder=folder, bucket=bucket, release=(str(ort), str(macos)),
                           record=entry))  # fmt: skip
    listed = {PurePosixPath(e.dir) for e in found}
    for entry_dir in sorted((folder / "coreml").glob("*/*/*/*")):
        rel = PurePosixPath(entry_dir.relative_to(folder).as_posix())
        if entry_dir.is_dir() and rel not in listed:
            raise CacheMergeError(f"{entry_dir}: an entry {RECORD_NAME} does not list; remove it")
    return found


@dataclass(frozen=True, kw_only=True)
class _ModelMerge:
    """One model's checked entries from every source, and the records they came from."""

    recipe: Recipe
    entries: dict[str, Entry]  # by dir
    records: list[dict[str, Any]]


def _merge_model(recipe: Recipe, sources: tuple[Path, ...]) -> _ModelMerge:
    from retinaface_coreml_toolchain.precompile import _cache_keys

    options = dict(recipe.coreml_options or coreml.DEFAULT_OPTIONS)
    keys = _cache_keys(recipe)
    merged: dict[str, Entry] = {}
    records = []
    for source in sources:
        folder = source / recipe.name
        record = _load(folder)
        records.append(record)
        for entry in _check_record(folder, record, options, keys):
            earlier = merged.setdefault(entry.dir, entry)
            if earlier.record["files"] != entry.record["files"]:
                raise CacheMergeError(
                    f"{entry.dir}: {earlier.folder} and {entry.folder} hold different bytes for "
                    "the same ORT, macOS, options and key; keep one of the two builds"
                )
    return _ModelMerge(recipe=recipe, entries=merged, records=records)


def _release_records(model: _ModelMerge, digest: str) -> list[dict[str, Any]]:
    """One record per (ORT, macOS major): its entries by bucket, and the buckets every source
    of that release refused (a bucket another source of it shipped is not refused)."""
    releases: dict[tuple[str, str], dict[str, Any]] = {}
    for record in model.records:
        release = (str(record["ort_version"]), str(record["macos_major"]))
        item = releases.setdefault(release, {"entries": {}, "refused": {}})
        item["refused"].update(record.get("refused") or {})
    for entry in model.entries.values():
        releases[entry.release]["entries"][entry.bucket] = entry.record
    out = []
    for (ort, macos), item in sorted(
        releases.items(), key=lambda r: (version_key(r[0][0]), int(r[0][1]))
    ):
        refused = {b: r for b, r in sorted(item["refused"].items()) if b not in item["entries"]}
        out.append(
            {
                "ort_version": ort,
                "macos_major": macos,
                "options_digest": digest,
                "entries": dict(sorted(item["entries"].items())),
                "refused": refused,
            }
        )
    return out


def merge_caches(
    recipes: list[Recipe], request: MergeRequest, *, env: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """Check every source, publish each model's union into its build folder; return the
    merged precompile record per model."""
    if not request.sources:
        raise CacheMergeError("merge-caches: name at least one folder of precompile output")
    for source in request.sources:
        _check_models(source, recipes)
    models = [_merge_model(recipe, request.sources) for recipe in recipes]
    machines = {str(r.get("machine")) for m in models for r in m.records}
    if len(machines) != 1:
        raise CacheMergeError(f"the entries were built on {', '.join(sorted(machines))}: one "
                              "wheel carries one CPU architecture; merge each apart")  # fmt: skip
    releases = sorted(
        {(str(r["ort_version"]), str(r["macos_major"])) for m in models for r in m.records}
    )
    ort_versions = sorted({ort for ort, _ in releases}, key=version_key)
    if pin_requested(env) and len(ort_versions) > 1:
        raise CacheMergeError(
            f"an exact onnxruntime pin needs entries of one release, these are for "
            f"{', '.join(ort_versions)}; merge without RETINAFACE_COREML_PIN_ORT"
        )
    (machine,) = machines
    merged = {}
    with step("merge-caches"):
        for model in models:
            merged[model.recipe.name] = _publish(model, machine)
    return merged


def _publish(model: _ModelMerge, machine: str) -> dict[str, Any]:
    """Copy the model's union into ``models/build/<name>/coreml/`` and write its record."""
    recipe = model.recipe
    options = dict(recipe.coreml_options or coreml.DEFAULT_OPTIONS)
    digest = coreml.options_digest(options)
    with staging_dir(cache_root(recipe)) as tmp:
        for entry in model.entries.values():
            target = tmp / PurePosixPath(entry.dir).relative_to("coreml")
            shutil.copytree(entry.folder / entry.dir, target)
    releases = _release_records(model, digest)
    ort_versions = [r["ort_version"] for r in releases]
    majors = sorted({r["macos_major"] for r in releases}, key=int)
    refused = sum(len(r["refused"]) for r in releases)
    record = {
        "status": "built",
        "reason": "",
        "summary": (
            f"{len(model.entries)} entries for onnxruntime {', '.join(ort_versions)} on macOS "
            f"{', '.join(majors)} ({machine}), options {digest}"
            + (f"; {refused} refused by the numerical gate" if refused else "")
        ),
        # ``ort_version`` as `info` prints it; ``releases`` holds each (ORT, macOS major). The
        # lowest macOS major tags the wheel (an entry compiled on macOS 14 also serves 15).
        "ort_version": ", ".join(ort_versions),
        "macos_major": majors[0],
        "machine": machine,
        "provider_options": dict(sorted(options.items())),
        "options_digest": digest,
        "releases": releases,
    }
    write_json(record_path(recipe), record)
    return record


@dataclass(frozen=True, kw_only=True)
class MergeResult:
    merge: dict[str, dict[str, Any]]
    package: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"merge": self.merge, "package": self.package}


def merge_into_wheel(
    recipes: list[Recipe], request: MergeRequest, *, env: Mapping[str, str]
) -> MergeResult:
    """Merge the sources into every model's build folder, then package every model."""
    from retinaface_coreml_toolchain.package import build_wheel

    merged = merge_caches(recipes, request, env=env)
    return MergeResult(merge=merged, package=build_wheel(recipes).to_dict())


def render(record: dict[str, Any]) -> str:
    """One line per shipped entry, each model's summary, then the wheel."""
    lines = []
    for name, merged in record["merge"].items():
        for release in merged["releases"]:
            lines += [f"{name:<11} {b:<9} {e['dir']}" for b, e in release["entries"].items()]
            lines += [
                f"{name:<11} {b:<9} refused on onnxruntime {release['ort_version']}: {r['reason']}"
                for b, r in release["refused"].items()
            ]
        lines.append(f"{name}: {merged['summary']}")
    wheel = record["package"]
    lines += [f"wheel:  {wheel['wheel']}", f"sha256: {wheel['sha256']}"]
    return "\n".join(lines)
