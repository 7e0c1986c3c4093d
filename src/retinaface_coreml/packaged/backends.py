"""Open one bucket of a packaged model as a runner on the CPU or CoreML EP.

Knows models, buckets and their inputs; nothing about faces. Chosen once per (bucket, CoreML
options) (DESIGN.md, "The CoreML cache", "Never block on a compile"):

* no CoreML EP here, or ``backend="cpu"``: a CPU session;
* a bucket the build's CoreML numerical gate refused for these options (refusal.py): a CPU
  session, whatever the backend or the cache holds, and one warning saying why;
* a valid entry in the user cache, or a matching one shipped in the wheel (copied into the user
  cache once): a CoreML session at once;
* otherwise (``"auto"``): a CPU session at once, and a detached compile child
  (compile_process.py); a later ``run`` finds the published entry and loads it on the caller's
  own thread (a cache hit), and ``runner.backend`` says which one runs now. A failed compile or
  load is not retried for a day (cache.RETRY_AFTER). ``"coreml"`` and ``warmup`` wait for the
  child in the foreground instead, with progress, and retry at once: they were asked for.

No ORT call of this module runs on a background thread. The cache and compile modules (and
their filelock/platformdirs imports) load only on the CoreML path, so a Linux process never
pays for them.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import onnxruntime

from retinaface_coreml import coreml
from retinaface_coreml.errors import ArtifactError, BackendError
from retinaface_coreml.lazy_logging import get_logger

if TYPE_CHECKING:
    import subprocess

    from retinaface_coreml.artifacts import BucketInfo, Manifest, ModelRecord, Refusal
    from retinaface_coreml.packaged.cache import CacheLayout

log = get_logger(__name__)

BACKENDS = ("auto", "cpu", "coreml")
CPU_EP = coreml.CPU_EP
COREML_EP = coreml.EP

Progress = Callable[[str], None]
"""Receives one human-readable line per event, e.g. ``"640x640: cpu, nothing to compile"``."""


Feed = Mapping[str, Any]


class Runner(Protocol):
    """One model file ready to run; ``backend`` is ``"cpu"`` or ``"coreml"``."""

    backend: str

    def run(self, feed: Feed, run_options: Any = None) -> list[np.ndarray]:
        """Outputs for ``feed`` ({input name: array}), in the model's outputs order."""
        ...


class SessionRunner:
    """A Runner around one ``onnxruntime.InferenceSession``; ``output_names`` fix the order."""

    def __init__(
        self,
        session: onnxruntime.InferenceSession,
        *,
        backend: str,
        output_names: Sequence[str],
    ) -> None:
        self.backend = backend
        self.session = session
        self._output_names = list(output_names)

    def run(self, feed: Feed, run_options: Any = None) -> list[np.ndarray]:
        return self.session.run(self._output_names, feed, run_options)


POLL_SECONDS = 1.0
"""How often a serving runner looks for the entry its compile child publishes (one stat)."""


class PendingRunner:
    """Serves from CPU while the compile child works; then from the entry it published.

    At most once per ``poll`` seconds a ``run`` looks for the published entry and, once it is
    complete, loads it on the calling thread (a cache hit: no compile in this process). A child
    that ended without publishing, or an entry that does not load, leaves the CPU runner in
    place for the rest of the process (``error`` says why).
    """

    def __init__(
        self,
        cpu: Runner,
        *,
        entry: Path,
        process: subprocess.Popen,
        load: Callable[[], Runner],
        label: str,
        failure: Callable[[], str],
        poll: float | None = None,
    ) -> None:
        self._current = cpu
        self._entry = entry
        self._process: subprocess.Popen | None = process
        self._load = load
        self._label = label
        self._failure = failure
        self._poll = POLL_SECONDS if poll is None else poll
        self._next_look = 0.0
        self._swap_lock = threading.Lock()
        self.error: str | None = None

    @property
    def backend(self) -> str:
        return self._current.backend

    @property
    def process(self) -> subprocess.Popen | None:
        """The compile child while this runner still waits for it (None once settled)."""
        return self._process

    def run(self, feed: Feed, run_options: Any = None) -> list[np.ndarray]:
        if self._process is not None and time.monotonic() >= self._next_look:
            self._look()
        return self._current.run(feed, run_options)

    def _look(self) -> None:
        # Another thread already looking (or loading) serves this call from what is current.
        if not self._swap_lock.acquire(blocking=False):
            return
        try:
            process = self._process
            if process is None:
                return
            self._next_look = time.monotonic() + self._poll
            from retinaface_coreml.packaged import cache

            exited = process.poll()  # before the entry check: a child publishes, then exits
            if cache.entry_published(self._entry):
                self._process = None
                try:
                    self._current = self._load()
                except Exception as exc:
                    self.error = f"{type(exc).__name__}: {exc}"
                    log.warning(
                        "%s: the compiled CoreML entry does not load (%s); staying on CPU",
                        self._label,
                        self.error,
                    )
                    return
                log.info("%s: now on CoreML (compiled in the background)", self._label)
            elif exited is not None:
                self._process = None
                self.error = self._failure() or f"the compile process exited with code {exited}"
                log.warning("%s: no CoreML entry (%s); staying on CPU", self._label, self.error)
        finally:
            self._swap_lock.release()


SessionFactory = Callable[[Path | None], Runner]
"""Opens a bucket on CoreML cached in a directory, e.g. ``<cache>/1.32.0/14/<digest>``."""


@dataclass(frozen=True, kw_only=True)
class Target:
    """One packaged model served with one set of CoreML provider options (the caller's, else
    the recipe's): every bucket runner, cache directory and compile child is per target."""

    manifest: Manifest
    model: ModelRecord
    options: Mapping[str, str]
    session_options: Any = field(default=None, compare=False)  # the caller's, for every bucket

    @property
    def digest(self) -> str:
        return coreml.options_digest(self.options)


def target(
    manifest: Manifest,
    model: ModelRecord,
    options: Mapping[str, str] | None = None,
    *,
    session_options: Any = None,
) -> Target:
    """``model`` with ``options``, or with the options its recipe built the shipped cache with."""
    chosen = options if options is not None else recipe_options(model)
    return Target(
        manifest=manifest, model=model, options=dict(chosen), session_options=session_options
    )


def recipe_options(model: ModelRecord) -> dict[str, str]:
    """The provider options the shipped cache was built with (the recipe's), else the defaults."""
    return dict(model.coreml.provider_options or coreml.DEFAULT_OPTIONS)


def coreml_factory(tgt: Target, data: bytes) -> SessionFactory:
    """The session factory: ``coreml.create_session`` on the verified model bytes, with the
    target's provider options."""

    def open_session(cache_dir: Path | None) -> Runner:
        session = coreml.create_session(
            data, options=tgt.options, cache_dir=cache_dir, session_options=tgt.session_options
        )
        return SessionRunner(session, backend="coreml", output_names=tgt.model.output_names)

    return open_session


@dataclass(frozen=True, kw_only=True)
class Context:
    """What backends read from the process, passed in (cibuildwheel's ``env=os.environ``)."""

    host: coreml.Host
    env: Mapping[str, str]


def current_context() -> Context:
    """This process: its ORT build, platform and environment."""
    import os

    return Context(host=coreml.detect_host(), env=os.environ)


def coreml_available() -> bool:
    """Whether this onnxruntime build offers the CoreML execution provider (macOS wheels only)."""
    return coreml.detect_host().coreml_available


def check_backend(backend: str, host: coreml.Host | None = None) -> str:
    """Return ``backend`` if it is a known name and usable on ``host`` (default: this one)."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; use one of: {', '.join(BACKENDS)}")
    if backend == "coreml":
        host = host or coreml.detect_host()
        if not host.coreml_available:
            raise BackendError(
                f"backend 'coreml' requested but onnxruntime {host.ort_version} has no "
                f"{COREML_EP} here (it ships only in the macOS wheels); use backend='auto' or 'cpu'"
            )
    return backend


def cpu_runner(
    data: bytes | str, output_names: Sequence[str], session_options: Any = None
) -> SessionRunner:
    """A CPU session on a model (bytes or a path), outputs in ``output_names`` order."""
    session = onnxruntime.InferenceSession(data, sess_options=session_options, providers=[CPU_EP])
    return SessionRunner(session, backend="cpu", output_names=output_names)


def _cpu_runner(tgt: Target, data: bytes | str) -> SessionRunner:
    return cpu_runner(data, tgt.model.output_names, tgt.session_options)


def cpu_bucket(tgt: Target, bucket: BucketInfo) -> Runner:
    """``bucket`` on the CPU EP, its file verified (``Manifest.load_verified``)."""
    return tgt.manifest.load_verified(bucket.file, functools.partial(_cpu_runner, tgt))


def open_runner(
    tgt: Target,
    bucket: BucketInfo,
    *,
    backend: str = "auto",
    context: Context | None = None,
) -> Runner:
    """Open ``bucket``'s model, verified: on the CPU from the open file when hash_memory.py
    knows it matches (checked unchanged after the load), else from its verified bytes (one
    read: no swap between check and load)."""
    context = context or current_context()
    check_backend(backend, context.host)
    if backend == "cpu" or not context.host.coreml_available:
        return cpu_bucket(tgt, bucket)
    refused = refused_here(tgt, bucket, context)
    if refused is not None:
        return _refused_runner(tgt, bucket, refused)
    data = tgt.manifest.read_verified(bucket.file)
    return _open_coreml(tgt, bucket, data, context, foreground=backend == "coreml")


class Runners(Mapping[str, Runner]):
    """A target's bucket runners, each opened on first use and kept (thread-safe), by name."""

    def __init__(self, tgt: Target, *, backend: str = "auto") -> None:
        self.target = tgt
        self.backend = backend
        self._opened: dict[str, Runner] = {}
        self._lock = threading.Lock()

    def open(self, bucket: BucketInfo) -> Runner:
        """The bucket's runner, opened now (``open_runner``) unless it already is."""
        runner = self._opened.get(bucket.name)
        if runner is None:
            with self._lock:
                runner = self._opened.get(bucket.name)
                if runner is None:
                    runner = open_runner(self.target, bucket, backend=self.backend)
                    log.debug(
                        "%s %s ready on %s", self.target.model.name, bucket.name, runner.backend
                    )
                    self._opened[bucket.name] = runner
        return runner

    def adopt(self, opened: Mapping[str, Runner]) -> None:
        """Keep runners opened elsewhere (``warmup``), unless one is open already."""
        with self._lock:
            for name, runner in opened.items():
                self._opened.setdefault(name, runner)

    def __getitem__(self, name: str) -> Runner:
        return self._opened[name]

    def __iter__(self):
        return iter(dict(self._opened))

    def __len__(self) -> int:
        return len(self._opened)


def refused_here(tgt: Target, bucket: BucketInfo, context: Context) -> Refusal | None:
    """The build's refusal of ``bucket`` that holds on this host for the target's options."""
    if not bucket.refusals:
        return None
    from retinaface_coreml.packaged import cache, refusal

    layout = _host_layout(tgt, context)
    shipped = cache.shipped_entries(tgt.manifest, bucket.coreml_cache_key)
    return refusal.applicable(
        bucket,
        digest=tgt.digest,
        ort_version=layout.ort_version,
        macos_major=layout.macos_major,
        shipped_here=cache.matching_shipped(layout, shipped) is not None,
    )


def _refused_runner(tgt: Target, bucket: BucketInfo, refused: Refusal) -> Runner:
    """A CPU runner for a refused bucket, after the one warning saying why (no compile child)."""
    from retinaface_coreml.packaged import refusal

    refusal.warn(tgt.model.name, bucket.name, refused)
    return cpu_bucket(tgt, bucket)


INSTALL_WAIT = 5.0
"""Seconds the foreground waits for the key's lock to copy a shipped entry (a copy takes <1 s)."""


def _host_layout(tgt: Target, context: Context) -> CacheLayout:
    """The cache directory for this host and options, e.g. ``<root>/1.32.0/14/1e63e1b50d8d``."""
    from retinaface_coreml.packaged import cache

    return cache.CacheLayout(
        root=cache.cache_root(context.env),
        ort_version=context.host.ort_version,
        macos_major=context.host.macos_major or "",
        digest=tgt.digest,
    )


def _layout(tgt: Target, context: Context) -> tuple[CacheLayout, str | None]:
    """The cache directory for this host and options, and why it is unusable (None: usable)."""
    from retinaface_coreml.packaged import cache

    layout = _host_layout(tgt, context)
    return layout, cache.probe_writable(layout.dir)


def _usable_layout(tgt: Target, context: Context) -> CacheLayout | None:
    """The layout, or None after one warning per directory when it cannot be written."""
    from retinaface_coreml.packaged import cache

    layout, problem = _layout(tgt, context)
    if problem is None:
        return layout
    log.warning_once(
        str(layout.dir),
        "the CoreML cache directory %s is not writable (%s); using the CPU backend. "
        "Point %s at a writable directory to use CoreML.",
        layout.dir,
        problem,
        cache.ENV_VAR,
    )
    return None


def _install_shipped(tgt: Target, layout: CacheLayout, bucket: BucketInfo) -> bool:
    """Copy the matching shipped entry into the user cache once; False when there is none."""
    from retinaface_coreml.packaged import cache, compiler

    key = bucket.coreml_cache_key
    match = cache.matching_shipped(layout, cache.shipped_entries(tgt.manifest, key))
    if match is None:
        return False
    published = compiler.publish_once(
        layout,
        key,
        lambda tmp: cache.copy_shipped(tgt.manifest, match, tmp / key),
        timeout=INSTALL_WAIT,
    )
    if published.built:
        log.info("%s: installed the shipped CoreML entry into %s", bucket.name, published.entry)
    return True


def _ready_entry(tgt: Target, layout: CacheLayout, bucket: BucketInfo) -> bool:
    """A valid entry is in the user cache now (installed from the wheel if need be).

    False sends the caller to the background compile, which also waits for the lock.
    """
    from retinaface_coreml.packaged import cache, compiler

    if cache.check_entry(layout.entry(bucket.coreml_cache_key)) is None:
        return True
    try:
        return _install_shipped(tgt, layout, bucket)
    except ArtifactError as exc:
        log.warning(
            "%s: not using the shipped CoreML entry: %s; compiling instead", bucket.name, exc
        )
    except compiler.CompileError as exc:  # the lock is busy: do not wait in the foreground
        log.info("%s: %s", bucket.name, exc)
    return False


def _start_child(tgt: Target, bucket: BucketInfo, layout: CacheLayout, context: Context):
    from retinaface_coreml.packaged import compile_process

    return compile_process.start(
        layout,
        bucket.coreml_cache_key,
        models_dir=tgt.manifest.root,
        model=tgt.model.name,
        bucket=bucket.name,
        options=tgt.options,
        env=context.env,
    )


def _open_coreml(
    tgt: Target, bucket: BucketInfo, data: bytes, context: Context, *, foreground: bool
) -> Runner:
    from retinaface_coreml.packaged import cache, compiler

    factory = coreml_factory(tgt, data)
    label, key = bucket.name, bucket.coreml_cache_key
    try:
        layout = _usable_layout(tgt, context)
        ready = layout is not None and _ready_entry(tgt, layout, bucket)
    except OSError as exc:
        # The cache is optional: an I/O error turns it off, as in pip's network/cache.py; it
        # never fails a run.
        log.warning("%s: CoreML cache unusable (%s); using the CPU backend", label, exc)
        layout = None
    if layout is None:
        return factory(None) if foreground else _cpu_runner(tgt, data)
    if ready:
        log.info("%s: CoreML from the cache entry in %s", label, layout.dir)
        try:
            return _load_ready(layout, bucket, factory)
        except compiler.CompileError:
            if foreground:
                raise
            return _cpu_runner(tgt, data)
    if foreground:
        return _compile_foreground(tgt, bucket, layout, context, factory, report=log.info)
    failure = cache.read_failure(layout, key)
    if failure is not None and failure.blocks(context.host.ort_version, time.time()):
        log.info(
            "%s: not compiling for CoreML: %s; using CPU",
            label,
            failure.describe(context.host.ort_version, time.time()),
        )
        return _cpu_runner(tgt, data)
    process = _start_child(tgt, bucket, layout, context)
    log.info("%s: serving from CPU while CoreML compiles in process %d", label, process.pid)
    return PendingRunner(
        _cpu_runner(tgt, data),
        entry=layout.entry(key),
        process=process,
        load=lambda: _load_ready(layout, bucket, factory),
        label=label,
        failure=lambda: _failure_text(layout, key),
    )


def _failure_text(layout: CacheLayout, key: str) -> str:
    """Why the compile child published nothing: its recorded failure, else its log's last line."""
    from retinaface_coreml.packaged import cache, compile_process

    failure = cache.read_failure(layout, key)
    return failure.error if failure is not None else compile_process.last_line(layout, key)


def _load_ready(layout: CacheLayout, bucket: BucketInfo, factory: SessionFactory) -> Runner:
    """Load the published entry; one that fails is moved aside, recorded, and a CompileError."""
    from retinaface_coreml.packaged import cache, compiler

    key = bucket.coreml_cache_key
    try:
        return compiler.load_entry(layout, key, factory)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        log.warning("%s: cannot load the cached CoreML entry (%s)", bucket.name, message)
        cache.write_failure(layout, key, f"the cached entry does not load: {message}")
        raise compiler.CompileError(
            f"{bucket.name}: the cached CoreML entry does not load ({message}); it was moved "
            f"aside and is compiled again by `python -m retinaface_coreml warmup`"
        ) from exc


def _compile_foreground(
    tgt: Target,
    bucket: BucketInfo,
    layout: CacheLayout,
    context: Context,
    factory: SessionFactory,
    *,
    report: Progress,
    tick: float = 5.0,
) -> Runner:
    """Run the compile child and wait for it, reporting progress; then load its entry.

    Explicitly asked for, so a recorded failure does not hold it back. The child, not this
    process, compiles: ORT 1.21-1.30 would hold this process's GIL (no progress) for a minute.
    """
    from retinaface_coreml.packaged import cache, compile_process, compiler

    label, key = bucket.name, bucket.coreml_cache_key
    last = cache.read_last_compile(layout.root)
    failure = cache.read_failure(layout, key)
    report(
        f"{label}: compiling for CoreML"
        + (f"; the last compile took {last:.1f} s" if last else "; no compile recorded yet")
        + (f"; retrying after a failure ({failure.error})" if failure is not None else "")
    )

    def tick_report(elapsed: float) -> None:
        against = f" (the last compile took {last:.0f} s)" if last else ""
        report(f"{label}: compiling for CoreML… {elapsed:.0f} s{against}")

    process = _start_child(tgt, bucket, layout, context)
    code = compile_process.wait(process, report=tick_report, tick=tick)
    if code != 0 or not cache.entry_published(layout.entry(key)):
        why = _failure_text(layout, key) or f"the compile process exited with code {code}"
        report(f"{label}: CoreML compile failed: {why}; the CPU backend will be used")
        raise compiler.CompileError(
            f"{label}: CoreML compile failed ({why}); log: {layout.log_path(key)}"
        )
    return _load_ready(layout, bucket, factory)


def compile_bucket(tgt: Target, bucket: BucketInfo, *, context: Context | None = None) -> Runner:
    """Compile ``bucket``'s entry in this process (the compile child's job); raise on failure."""
    from retinaface_coreml.packaged import cache, compiler

    context = context or current_context()
    if not context.host.coreml_available:
        raise BackendError(context.host.unavailable_reason)
    layout = _usable_layout(tgt, context)
    if layout is None:
        raise BackendError(f"the CoreML cache directory is not writable (see {cache.ENV_VAR})")
    data = tgt.manifest.read_verified(bucket.file)
    factory = coreml_factory(tgt, data)
    return compiler.compile_entry(layout, bucket.coreml_cache_key, factory, label=bucket.name)


def warmup(
    tgt: Target,
    buckets: Iterable[BucketInfo],
    *,
    progress: Progress | None = None,
    backend: str = "auto",
    context: Context | None = None,
) -> dict[str, Runner]:
    """Prepare ``buckets`` now: verify each file; with CoreML, install or compile in the foreground.

    Reports stages and, while compiling, the elapsed time against the last recorded compile.
    Returns the runners it opened, by bucket name, so the caller need not load them again (none
    when the cache directory is unusable). Raises CompileError when a compile fails (after
    reporting it).
    """
    report = progress or (lambda line: log.info("%s", line))
    context = context or current_context()
    if backend == "cpu" or not context.host.coreml_available:
        why = "backend 'cpu' requested" if backend == "cpu" else context.host.unavailable_reason
        report(why)
        runners: dict[str, Runner] = {}
        for bucket in buckets:
            runners[bucket.name] = cpu_bucket(tgt, bucket)
            report(f"{bucket.name}: verified {bucket.file}; cpu backend, nothing to compile")
        return runners
    from retinaface_coreml.packaged import cache

    layout = _usable_layout(tgt, context)
    if layout is None:
        report(f"the CoreML cache directory is not writable; cpu backend (see {cache.ENV_VAR})")
        return {}
    report(f"CoreML cache: {layout.dir}")
    return {b.name: _warm_bucket(tgt, b, layout, context, report) for b in buckets}


def _warm_bucket(
    tgt: Target, bucket: BucketInfo, layout: CacheLayout, context: Context, report: Progress
) -> Runner:
    """Install or compile one bucket's entry in the foreground; return it loaded."""
    from retinaface_coreml.packaged import compiler, refusal

    label = bucket.name
    refused = refused_here(tgt, bucket, context)
    if refused is not None:
        report(f"{label}: cpu backend, nothing to compile: {refusal.explain(refused)}")
        return _refused_runner(tgt, bucket, refused)
    factory = coreml_factory(tgt, tgt.manifest.read_verified(bucket.file))
    started = time.perf_counter()
    if _ready_entry(tgt, layout, bucket):
        report(f"{label}: CoreML entry in the user cache; loading it")
        try:
            runner = _load_ready(layout, bucket, factory)
        except compiler.CompileError as exc:
            report(f"{exc}")
        else:
            report(f"{label}: loaded in {time.perf_counter() - started:.1f} s")
            return runner
    runner = _compile_foreground(tgt, bucket, layout, context, factory, report=report)
    report(f"{label}: compiled and loaded in {time.perf_counter() - started:.1f} s")
    return runner


def describe(tgt: Target, *, context: Context | None = None) -> dict[str, Any]:
    """Backend availability and per-bucket cache state of one model, as a JSON-ready record.

    e.g. ``{"onnxruntime": "1.32.0", "backend": "cpu", "coreml": {"available": False, ...},
    "buckets": [{"name": "640x640", "coreml_cache": "unavailable"}, ...]}``. On a CoreML host
    each bucket's ``coreml_cache_detail`` says why a shipped entry was not used (built for
    another onnxruntime, other options or another macOS major), or, for a bucket in state
    ``refused``, why the build refused it and what to do. Every bucket lists the build's
    refusals of it under ``coreml_refused`` (on any host: they are facts of the wheel).
    """
    from retinaface_coreml.packaged import refusal

    context = context or current_context()
    host = context.host
    record: dict[str, Any] = {
        "onnxruntime": host.ort_version,
        "providers": list(host.providers),
        "backend": "cpu",
        "coreml": {"available": host.coreml_available, "reason": host.unavailable_reason},
        "shipped_cache": _shipped_summary(tgt.model),
        "buckets": [
            {
                "name": b.name,
                "coreml_cache_key": b.coreml_cache_key,
                "coreml_cache": "unavailable",
                "coreml_refused": [refusal.explain(r) for r in b.refusals],
            }
            for b in tgt.model.buckets
        ],
    }
    if not host.coreml_available:
        return record
    from retinaface_coreml.packaged import cache

    layout, problem = _layout(tgt, context)
    record["cache"] = {
        "dir": str(layout.dir),
        "options": dict(tgt.options),
        "options_digest": layout.digest,
        "last_compile_seconds": cache.read_last_compile(layout.root),
        "writable": problem is None,
    }
    if problem is not None:
        record["coreml"]["reason"] = (
            f"the CoreML cache directory {layout.dir} is not writable ({problem}); "
            "the CPU backend is in use"
        )
        return record
    ready = (cache.IN_USER_CACHE, cache.SHIPPED)
    states = []
    for bucket, entry in zip(tgt.model.buckets, record["buckets"], strict=True):
        refused = refused_here(tgt, bucket, context)
        if refused is not None:
            entry["coreml_cache"] = cache.REFUSED
            entry["coreml_cache_detail"] = (
                f"{refusal.explain(refused)}; served on the CPU; {refusal.advice(tgt.model.name)}"
            )
            entry["backend"] = "cpu"
            continue
        state = cache.bucket_state(
            layout,
            entry["coreml_cache_key"],
            cache.shipped_entries(tgt.manifest, entry["coreml_cache_key"]),
        )
        entry["coreml_cache"] = state.state
        entry["coreml_cache_detail"] = state.detail
        entry["backend"] = "coreml" if state.state in ready else "cpu until compiled"
        states.append(state.state)
    refused_count = len(record["buckets"]) - len(states)
    if not states:
        record["backend"] = "cpu"
    elif all(s in ready for s in states):
        record["backend"] = "coreml" + (
            f" ({refused_count} refused bucket(s) on cpu)" if refused_count else ""
        )
    else:
        record["backend"] = "cpu until compiled"
    record["coreml"]["reason"] = f"{COREML_EP} is available; cache {layout.dir}"
    return record


def _shipped_summary(model: ModelRecord) -> str:
    """e.g. ``"built for onnxruntime 1.32.0 on macOS 14"``, or ``"none (<why>)"``."""
    built = [
        f"onnxruntime {r.get('ort_version')} on macOS {r.get('macos_major')}"
        for r in model.raw.get("coreml_cache") or []
        if r.get("entries")
    ]
    if built:
        return "built for " + "; ".join(built)
    reason = (model.raw.get("precompile") or {}).get("reason")
    return f"none ({reason})" if reason else "none"
