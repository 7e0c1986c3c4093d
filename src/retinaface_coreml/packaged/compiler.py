"""Compile one cache entry at most once across processes, and publish it atomically.

The session factory is injected: ``factory(cache_dir)`` opens a session whose compiler writes or
reuses ``<cache_dir>/<key>/`` (with CoreML: ORT's ``ModelCacheDirectory``).

Across processes (pre-commit's ``store.py`` is the model): look; take the per-key
``filelock.FileLock``; look again (another process may have done it); build in a private temp
dir inside the cache root, removed on any failure; publish with one ``os.replace``; release.
This runs in the compile child (``python -m retinaface_coreml compile``, started by
compile_process.py), never on a thread of the caller: ORT 1.21-1.30 holds the GIL for a whole
session creation, and 1.31+ aborts a process that exits while a thread is inside one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import filelock

from retinaface_coreml.errors import RetinaFaceError
from retinaface_coreml.lazy_logging import get_logger
from retinaface_coreml.packaged import cache
from retinaface_coreml.packaged.cache import CacheLayout

log = get_logger(__name__)

T = TypeVar("T")

LOCK_TIMEOUT = 900.0
"""Seconds to wait for another process's compile (30-60 s is typical) before giving up."""

_BUILD_PREFIX = ".build-"


class CompileError(RetinaFaceError):
    """A CoreML compile failed or could not publish its entry; the detector stays on CPU."""


@dataclass(frozen=True, kw_only=True)
class Published:
    """What ``publish_once`` found or did, e.g. built=False when another process had published."""

    entry: Path
    built: bool
    seconds: float


def publish_once(
    layout: CacheLayout,
    key: str,
    build: Callable[[Path], object],
    *,
    timeout: float = LOCK_TIMEOUT,
) -> Published:
    """Make ``<layout.dir>/<key>/`` a complete entry, building it at most once across processes.

    ``build(tmp)`` must leave the entry in ``tmp/<key>/``; ``tmp`` is private to this call.
    """
    entry = layout.entry(key)
    if cache.check_entry(entry) is None:
        return Published(entry=entry, built=False, seconds=0.0)
    layout.dir.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(layout.lock_path(key))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        # Say so only when waiting (pre-commit logs "Locking ..." only when the lock is held).
        log.info("another process is still compiling %s; waiting (lock %s)", key, lock.lock_file)
        try:
            lock.acquire(timeout=timeout)
        except filelock.Timeout:
            raise CompileError(
                f"another process is still compiling {key} after {timeout:.0f} s "
                f"(lock {lock.lock_file}); staying on CPU"
            ) from None
    try:
        problem = cache.check_entry(entry)
        if problem is None:
            log.info("%s was published by another process meanwhile", key)
            return Published(entry=entry, built=False, seconds=0.0)
        if problem != "no entry":
            log.warning("ignoring the cache entry %s: %s; rebuilding it", entry, problem)
        _remove_orphans(layout, key)
        started = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=f"{_BUILD_PREFIX}{key}-", dir=layout.root))
        try:
            build(tmp)
            produced = tmp / key
            if not produced.is_dir():
                raise CompileError(f"the compiler wrote no cache entry {key}/ into {tmp}")
            cache.record_entry(produced, key=key)
            _set_modes(produced)
            if entry.exists() or entry.is_symlink():
                os.replace(entry, tmp / "replaced")  # the invalid one goes away with tmp
            os.replace(produced, entry)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return Published(entry=entry, built=True, seconds=time.perf_counter() - started)
    finally:
        lock.release()


def _remove_orphans(layout: CacheLayout, key: str) -> None:
    """Drop temp dirs of processes killed mid-build; under the key's lock none is in use."""
    for orphan in layout.root.glob(f"{_BUILD_PREFIX}{key}-*"):
        log.info("removing %s, left by an interrupted compile", orphan)
        shutil.rmtree(orphan, ignore_errors=True)


def _set_modes(folder: Path) -> None:
    """World-readable like any installed file: mkdtemp made the parent 0700 (pip's cache.py)."""
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            os.chmod(path, 0o755)
        elif path.is_file() and not path.is_symlink():
            os.chmod(path, 0o644)


def compile_entry(
    layout: CacheLayout,
    key: str,
    factory: Callable[[Path], T],
    *,
    label: str,
    timeout: float = LOCK_TIMEOUT,
) -> T:
    """Compile ``key`` once (or find it done), then open it from the published entry.

    Opening it proves the entry loads before any caller relies on it: an entry that does not
    is moved aside. Logs the start with the last recorded duration and the end with this one;
    a failure is logged once, recorded (for the back-off and ``info``) and raised as CompileError.
    """
    last = cache.read_last_compile(layout.root)
    if cache.check_entry(layout.entry(key)) is not None:
        log.info(
            "compiling %s for CoreML into %s (%s)",
            label,
            layout.dir,
            f"the last compile took {last:.1f} s" if last else "no compile recorded yet",
        )
    try:
        published = publish_once(layout, key, factory, timeout=timeout)
    except Exception as exc:
        raise _failed(layout, key, f"CoreML compile of {label} failed", exc) from exc
    try:
        opened = load_entry(layout, key, factory)
    except Exception as exc:
        raise _failed(layout, key, f"the compiled entry of {label} does not load", exc) from exc
    cache.clear_failure(layout, key)
    if published.built:
        cache.write_last_compile(layout.root, published.seconds, key=key)
        log.info("compiled %s for CoreML in %.1f s", label, published.seconds)
    return opened


def load_entry(layout: CacheLayout, key: str, factory: Callable[[Path], T]) -> T:
    """Open the published entry (a cache hit); on failure move it aside, then re-raise.

    ORT takes any ``<key>/`` folder as a hit and never checks it (spec §5.4): left in place, an
    entry that fails to load would fail again at every launch.
    """
    try:
        return factory(layout.dir)
    except Exception:
        moved = cache.quarantine(layout, key)
        if moved is not None:
            log.warning("moved the CoreML cache entry that failed to load to %s", moved)
        raise


def _failed(layout: CacheLayout, key: str, what: str, exc: Exception) -> CompileError:
    """Log and record ``exc`` once; the CompileError to raise."""
    message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, CompileError) else str(exc)
    log.warning("%s (%s); staying on CPU", what, message)
    cache.write_failure(layout, key, f"{what}: {message}")
    return CompileError(f"{what}: {message}")
