"""The CoreML cache on disk: where entries live, when one is valid, shipped entries, states.

Layout (DESIGN.md, "The CoreML cache")::

    <root>/<ort version>/<macOS major>/<options digest>/       the ModelCacheDirectory given to ORT
        <key>/                                                  ORT's entry + our entry.json
        <key>.lock                                              per-key file lock (compiler.py)
        <key>.failed.json                                       the last failed compile or load
    <key>.log                                               the compile child's log
    .bad-<key>/                                             an entry that failed to load
    <root>/last_compile.json                                    seconds the last compile took

ORT treats any ``<key>/`` folder as a hit and never checks it (spec §5.4), so an entry only
counts here when its ``entry.json`` lists every file with a sha256 that still matches. Nothing
in this module locks or compiles: see compiler.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from retinaface_coreml.artifacts import hash_tree, sha256_file
from retinaface_coreml.atomic import write_bytes
from retinaface_coreml.lazy_logging import get_logger
from retinaface_coreml.user_cache import ENV_VAR as ENV_VAR
from retinaface_coreml.user_cache import cache_root as cache_root

if TYPE_CHECKING:
    from retinaface_coreml.artifacts import Manifest

log = get_logger(__name__)

ENTRY_RECORD = "entry.json"
LAST_COMPILE = "last_compile.json"
SHIPPED_DIR = "coreml"
"""Shipped entries' top folder in the package's models/: ``coreml/1.32.0/14/<digest>/<key>/``."""

IN_USER_CACHE = "in user cache"
SHIPPED = "shipped"
MISSING = "missing"
STALE = "stale"
FAILED = "failed"
REFUSED = "refused"
"""Set by backends.describe, not here: the build's numerical gate refused it (refusal.py)."""


@dataclass(frozen=True, kw_only=True)
class CacheLayout:
    """One cache directory for one ORT version, macOS major and set of provider options."""

    root: Path
    ort_version: str
    macos_major: str
    digest: str

    @property
    def relative(self) -> PurePosixPath:
        """e.g. ``1.32.0/14/5c0f1b7a9e21``: the same below the user root and the shipped one."""
        return PurePosixPath(self.ort_version, self.macos_major, self.digest)

    @property
    def dir(self) -> Path:
        """e.g. ``~/Library/Caches/retinaface-coreml/1.32.0/14/5c0f1b7a9e21``."""
        return self.root / self.relative

    def entry(self, key: str) -> Path:
        """e.g. ``<dir>/retinaface384x640fe7b...``: the folder ORT fills for that key."""
        return self.dir / key

    def lock_path(self, key: str) -> Path:
        """e.g. ``<dir>/retinaface384x640fe7b....lock`` (a sibling, never inside the entry)."""
        return self.dir / f"{key}.lock"

    def log_path(self, key: str) -> Path:
        """e.g. ``<dir>/retinaface384x640fe7b....log``: what the compile child printed."""
        return self.dir / f"{key}.log"

    def failure_path(self, key: str) -> Path:
        """e.g. ``<dir>/retinaface384x640fe7b....failed.json``."""
        return self.dir / f"{key}.failed.json"


def hash_files(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder`` but entry.json, e.g. ``{"model.txt": "9f..."}``."""
    return hash_tree(folder, skip=ENTRY_RECORD)


def _write_json(path: Path, record: Any) -> None:
    write_bytes(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())


def record_entry(folder: Path, *, key: str) -> dict[str, str]:
    """Hash what is in ``folder`` and write its ``entry.json``; return the hashes."""
    files = hash_files(folder)
    if not files:
        raise OSError(f"{folder}: empty cache entry, nothing to record")
    _write_json(folder / ENTRY_RECORD, {"key": key, "files": files})
    return files


def check_entry(folder: Path) -> str | None:
    """None if ``folder`` is a complete entry, else why not (e.g. ``"no entry.json"``)."""
    try:
        record = json.loads((folder / ENTRY_RECORD).read_text())
        files = record["files"]
    except FileNotFoundError:
        return "no entry" if not folder.exists() else f"no {ENTRY_RECORD} (partial entry)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable {ENTRY_RECORD} ({exc})"
    if not isinstance(files, dict) or not files:
        return f"{ENTRY_RECORD} lists no files"
    for rel, expected in sorted(files.items()):
        try:
            actual = sha256_file(folder / rel)
        except OSError:
            return f"{rel} is missing"
        if actual != expected:
            return f"{rel} has sha256 {actual[:12]}…, recorded {str(expected)[:12]}…"
    return None


def entry_published(folder: Path) -> bool:
    """Whether ``folder`` is a complete entry; one stat while it is not there yet."""
    return (folder / ENTRY_RECORD).is_file() and check_entry(folder) is None


def probe_writable(directory: Path) -> str | None:
    """None if ``directory`` can be created and written to, else the OS's reason."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def read_last_compile(root: Path) -> float | None:
    """Seconds the last CoreML compile under ``root`` took, if one was recorded."""
    try:
        return float(json.loads((root / LAST_COMPILE).read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_last_compile(root: Path, seconds: float, *, key: str) -> None:
    """Record the duration of a finished compile (best effort: a cache error is only logged)."""
    try:
        _write_json(root / LAST_COMPILE, {"seconds": round(seconds, 3), "key": key})
    except OSError as exc:
        log.warning("cannot record the compile time in %s: %s", root, exc)


RETRY_AFTER = 24 * 3600.0
"""Seconds a failed compile or load is not retried by ``auto`` (``warmup`` retries at once)."""


@dataclass(frozen=True, kw_only=True)
class Failure:
    """A failed compile or load, e.g. at 1764580000 on onnxruntime ``"1.32.0"``."""

    error: str
    at: float
    ort_version: str

    def blocks(self, ort_version: str, now: float) -> bool:
        """True while ``auto`` must not retry: same ORT, and less than a day ago."""
        return self.ort_version == ort_version and 0 <= now - self.at < RETRY_AFTER

    def describe(self, ort_version: str, now: float) -> str:
        """e.g. ``"failed 2 h ago on onnxruntime 1.32.0 (RuntimeError: ...); retried in 22 h"``."""
        ago = _hours(now - self.at)
        head = f"failed {ago} ago on onnxruntime {self.ort_version} ({self.error})"
        if self.blocks(ort_version, now):
            left = _hours(self.at + RETRY_AFTER - now)
            return f"{head}; not retried for {left} (run `python -m retinaface_coreml warmup` now)"
        return f"{head}; retried on next use"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.0f} h" if seconds >= 3600 else f"{max(seconds, 0) / 60:.0f} min"


def write_failure(layout: CacheLayout, key: str, message: str) -> None:
    """Remember a failed compile or load for every process (best effort: errors only logged)."""
    record = {"error": message, "at": round(time.time(), 3), "ort_version": layout.ort_version}
    try:
        _write_json(layout.failure_path(key), record)
    except OSError as exc:
        log.warning("cannot record the failed compile in %s: %s", layout.dir, exc)


def clear_failure(layout: CacheLayout, key: str) -> None:
    with contextlib.suppress(OSError):
        layout.failure_path(key).unlink()


def read_failure(layout: CacheLayout, key: str) -> Failure | None:
    try:
        record = json.loads(layout.failure_path(key).read_text())
        return Failure(
            error=str(record["error"]),
            at=float(record["at"]),
            ort_version=str(record.get("ort_version", layout.ort_version)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


QUARANTINE_PREFIX = ".bad-"


def quarantine(layout: CacheLayout, key: str) -> Path | None:
    """Move ``<dir>/<key>`` aside (ORT would take any folder there as a hit); return where to.

    e.g. ``<dir>/.bad-<key>`` (hidden: no later lookup sees it); an older one is replaced. None
    when there was nothing to move or the move failed (logged).
    """
    entry, target = layout.entry(key), layout.dir / f"{QUARANTINE_PREFIX}{key}"
    try:
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        os.replace(entry, target)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot move the unloadable cache entry %s aside: %s", entry, exc)
        return None
    return target


@dataclass(frozen=True, kw_only=True)
class ShippedEntry:
    """An entry inside the installed package, e.g. dir ``coreml/1.32.0/14/5c0f1b7a9e21/<key>``."""

    key: str
    relative: PurePosixPath
    files: tuple[str, ...]

    @property
    def dir(self) -> str:
        return self.relative.as_posix()


def shipped_entries(manifest: Manifest, key: str) -> list[ShippedEntry]:
    """Entries for ``key`` the manifest lists, whatever ORT/macOS/options they were built for."""
    found: dict[PurePosixPath, list[str]] = {}
    for rel in manifest.files:
        parts = PurePosixPath(rel).parts
        # coreml / <ort> / <macos> / <digest> / <key> / file...
        if len(parts) > 5 and parts[0] == SHIPPED_DIR and parts[4] == key:
            found.setdefault(PurePosixPath(*parts[:5]), []).append("/".join(parts[5:]))
    return [
        ShippedEntry(key=key, relative=rel, files=tuple(sorted(files)))
        for rel, files in sorted(found.items())
    ]


def matching_shipped(layout: CacheLayout, entries: list[ShippedEntry]) -> ShippedEntry | None:
    """The shipped entry for this layout's ORT version and options, built on the newest macOS
    major at or below the host's (a compiled Core ML model runs on later macOS, not earlier).
    """
    if not layout.macos_major.isdigit():
        return None
    usable = []
    for entry in entries:
        _, ort, macos, digest = entry.relative.parent.parts
        same = (ort, digest) == (layout.ort_version, layout.digest)
        if same and macos.isdigit() and int(macos) <= int(layout.macos_major):
            usable.append((int(macos), entry))
    return max(usable, key=lambda found: found[0])[1] if usable else None


def copy_shipped(manifest: Manifest, shipped: ShippedEntry, target: Path) -> None:
    """Copy a shipped entry into ``target``, each file checked against manifest.json.

    Raises ArtifactError (from ``Manifest.read_verified``) naming the first tampered file.
    """
    for rel in shipped.files:
        data = manifest.read_verified(f"{shipped.dir}/{rel}")
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def mismatch(layout: CacheLayout, rel: PurePosixPath) -> str:
    """Why an entry built at ``<ort>/<macos>/<digest>`` does not serve this layout, e.g.
    ``"other onnxruntime 1.31.0 (here 1.32.0)"`` or ``"newer macOS major 15 (here 14)"``."""
    ort, macos, digest = (*rel.parts, "", "", "")[:3]
    why = []
    if ort != layout.ort_version:
        why.append(f"other onnxruntime {ort} (here {layout.ort_version})")
    if digest != layout.digest:
        why.append(f"other CoreML options {digest} (here {layout.digest})")
    if macos != layout.macos_major:
        newer = (
            macos.isdigit()
            and layout.macos_major.isdigit()
            and int(macos) > int(layout.macos_major)
        )
        kind = "newer" if newer else "other"
        why.append(f"{kind} macOS major {macos} (here {layout.macos_major or '?'})")
    return ", ".join(why) or "same layout"


def other_entries(layout: CacheLayout, key: str, shipped: list[ShippedEntry]) -> list[str]:
    """Where else ``key`` has an entry and why it does not serve here, e.g.
    ``["user cache 1.31.0/14/5c0f1b7a9e21 (other onnxruntime 1.31.0 (here 1.32.0))"]``."""
    found = []
    with contextlib.suppress(OSError):
        for path in sorted(layout.root.glob(f"*/*/*/{key}")):
            rel = PurePosixPath(path.relative_to(layout.root).as_posix()).parent
            if rel != layout.relative:
                found.append(f"user cache {rel} ({mismatch(layout, rel)})")
    for entry in shipped:
        rel = entry.relative.parent.relative_to(SHIPPED_DIR)
        if rel != layout.relative:
            found.append(f"shipped {rel} ({mismatch(layout, PurePosixPath(rel))})")
    return found


@dataclass(frozen=True, kw_only=True)
class BucketCache:
    """A bucket's cache state: one of the constants above, plus what it rests on."""

    state: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"state": self.state, "detail": self.detail}


def bucket_state(layout: CacheLayout, key: str, shipped: list[ShippedEntry]) -> BucketCache:
    """The state of ``key``: in user cache, shipped, failed, stale or missing."""
    problem = check_entry(layout.entry(key))
    if problem is None:
        return BucketCache(state=IN_USER_CACHE, detail=str(layout.entry(key)))
    match = matching_shipped(layout, shipped)
    if match is not None:
        return BucketCache(state=SHIPPED, detail=f"{match.dir} (copied on first use)")
    failure = read_failure(layout, key)
    if failure is not None:
        return BucketCache(state=FAILED, detail=failure.describe(layout.ort_version, time.time()))
    others = other_entries(layout, key, shipped)
    note = "" if problem == "no entry" else f"; a partial or corrupt entry is ignored ({problem})"
    if others:
        return BucketCache(
            state=STALE,
            detail=f"only for other ORT/macOS/options: {', '.join(others)}; "
            f"wanted {layout.relative}{note}",
        )
    return BucketCache(state=MISSING, detail=f"compiled on first use{note}")
