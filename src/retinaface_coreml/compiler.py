"""Compile once, in the background, and swap: the machinery, independent of CoreML.

The session factory is injected: ``factory(cache_dir)`` opens a session whose compiler writes or
reuses ``<cache_dir>/<key>/`` (with CoreML: ORT's ``ModelCacheDirectory``). On Linux the tests
pass a deliberately slow stand-in that does the same with the CPU EP.

Across processes (pre-commit's ``store.py`` is the model): look; take the per-key
``filelock.FileLock``; look again (another process may have done it); build in a private temp
dir inside the cache root, removed on any failure; publish with one ``os.replace``; release.
In this process: one daemon worker thread, one future per bucket, one reference swapped when
the future is done (``HotSwap``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import filelock

from retinaface_coreml import cache
from retinaface_coreml.cache import CacheLayout
from retinaface_coreml.errors import RetinaFaceError

log = logging.getLogger(__name__)

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

    Logs the start with the last recorded duration, the end with this one; a failure is logged
    once, recorded for ``info`` and raised as CompileError.
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
        opened = factory(layout.dir)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        log.warning("CoreML compile of %s failed (%s); staying on CPU", label, message)
        cache.write_failure(layout, key, message)
        if isinstance(exc, CompileError):
            raise
        raise CompileError(f"CoreML compile of {label} failed: {message}") from exc
    cache.clear_failure(layout, key)
    if published.built:
        cache.write_last_compile(layout.root, published.seconds, key=key)
        log.info("compiled %s for CoreML in %.1f s", label, published.seconds)
    return opened


class _Worker:
    """One daemon thread running jobs in submission order; each job gets a Future.

    Daemon, so a process that exits never waits for a compile: its temp dir is an orphan that
    the next compile of that key removes, and the OS drops its file lock.
    """

    def __init__(self) -> None:
        self._jobs: list[tuple[Future, Callable[[], object]]] = []
        self._ready = threading.Condition()
        self._thread = threading.Thread(
            target=self._loop, name="retinaface-coreml-compile", daemon=True
        )
        self._thread.start()

    def submit(self, job: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._ready:
            self._jobs.append((future, job))
            self._ready.notify()
        return future

    def _loop(self) -> None:
        while True:
            with self._ready:
                while not self._jobs:
                    self._ready.wait()
                future, job = self._jobs.pop(0)
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to the waiting side, never lost
                future.set_exception(exc)


_worker: _Worker | None = None
_worker_lock = threading.Lock()


def submit(job: Callable[[], T]) -> Future[T]:
    """Run ``job`` on the one compile worker thread (started on first use)."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = _Worker()
    return _worker.submit(job)


def compile_in_background(
    layout: CacheLayout, key: str, factory: Callable[[Path], T], *, label: str
) -> Future[T]:
    """``compile_entry`` on the worker thread; the caller keeps serving meanwhile."""
    return submit(lambda: compile_entry(layout, key, factory, label=label))


def compile_with_progress(
    layout: CacheLayout,
    key: str,
    factory: Callable[[Path], T],
    *,
    label: str,
    report: Callable[[float, float | None], None],
    tick: float = 5.0,
) -> T:
    """``compile_entry`` in the foreground: ``report(elapsed, last)`` every ``tick`` seconds."""
    last = cache.read_last_compile(layout.root)
    started = time.perf_counter()
    future = submit(lambda: compile_entry(layout, key, factory, label=label))
    while not futures.wait([future], timeout=tick).done:
        report(time.perf_counter() - started, last)
    return future.result()


class HotSwap(Generic[T]):
    """Serves ``initial`` until ``future`` yields a replacement, then serves that.

    The swap happens on the first ``current`` after the future is done; a failed future leaves
    ``initial`` in place and keeps the error (already logged by ``compile_entry``).
    """

    def __init__(self, initial: T, future: Future[T] | None) -> None:
        self._current = initial
        self._future = future
        self.error: str | None = None

    @property
    def current(self) -> T:
        future = self._future
        if future is not None and future.done():
            self._future = None
            try:
                self._current = future.result()
            except Exception as exc:
                self.error = str(exc)
        return self._current

    @property
    def pending(self) -> Future[T] | None:
        """The compile still running, if any (tests and ``warmup`` wait on it)."""
        return self._future
