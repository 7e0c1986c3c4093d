"""Step 5: fill the CoreML cache per bucket on macOS, so the wheel can ship it.

For each bucket: an ORT session with the recipe's ``[coreml]`` options and
``ModelCacheDirectory=models/build/<name>/coreml/<ort>/<macOS major>/<options digest>/`` (the
runtime's layout, from ``retinaface_coreml.packaged.cache``), timed; the sha256 of every file ORT
wrote; then a second session, which must be a cache hit: faster, and not one file new or changed;
then the numerical gate (``coreml_gate.gate_for``: faces for a ``[detector]`` recipe, relative
outputs for any other model): that session's outputs on the validation inputs against the CPU's,
within the recipe's ``[coreml_tolerance]``. An entry out of tolerance is removed before staging
ends and listed under ``refused`` with the reason, so it never ships. The model's whole
``coreml/`` is staged and replaced at once, so nothing stale or half-written ships.

Elsewhere it writes ``precompile.json`` saying why it skipped and the build goes on: the wheel
is then ``py3-none-any`` without a cache. The record always carries the provider options, so
the runtime on a Mac compiles with the recipe's options even from a Linux-built wheel.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from retinaface_coreml import coreml
from retinaface_coreml.packaged.cache import CacheLayout, hash_files
from retinaface_coreml_toolchain.coreml_gate import EntryCheck, EntryGate, gate_for
from retinaface_coreml_toolchain.errors import GateFailed, MissingInputError
from retinaface_coreml_toolchain.files import staging_dir, write_json
from retinaface_coreml_toolchain.recipe import Recipe
from retinaface_coreml_toolchain.steplog import step

SKIPPED = "CoreML precompile skipped: needs macOS with onnxruntime's CoreML execution provider"

OpenSession = Callable[[bytes, Mapping[str, str], Path], object]
"""Opens a CoreML session on model bytes with ``ModelCacheDirectory`` = the path."""


def _open_coreml_session(model: bytes, options: Mapping[str, str], cache_dir: Path) -> object:
    return coreml.create_session(model, options=options, cache_dir=cache_dir)


@dataclass(frozen=True, kw_only=True)
class PrecompileRequest:
    """``buckets`` empty means every recipe bucket, e.g. ``("384x640",)``."""

    buckets: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CachedBucket:
    """One bucket's entry, e.g. dir ``coreml/1.32.0/14/5c0f1b7a9e21/retinaface384x640...``."""

    bucket: str
    key: str
    dir: str
    compile_seconds: float
    hit_seconds: float
    files: dict[str, str]
    numerics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class PrecompileResult:
    status: str
    reason: str
    ort_version: str
    macos_major: str | None
    machine: str
    provider_options: dict[str, str]
    options_digest: str
    entries: tuple[CachedBucket, ...] = field(default=())
    refused: tuple[EntryCheck, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The precompile.json record, merged into manifest.json as ``coreml_cache``."""
        return {
            "status": self.status,
            "reason": self.reason,
            "summary": self.summary,
            "ort_version": self.ort_version,
            "macos_major": self.macos_major,
            "machine": self.machine,
            "provider_options": dict(sorted(self.provider_options.items())),
            "options_digest": self.options_digest,
            "entries": {
                e.bucket: {
                    "key": e.key,
                    "dir": e.dir,
                    "compile_seconds": e.compile_seconds,
                    "hit_seconds": e.hit_seconds,
                    "files": e.files,
                    "numerics": e.numerics,
                }
                for e in self.entries
            },
            "refused": {c.bucket: {"reason": c.reason, "figures": c.figures} for c in self.refused},
        }

    @property
    def summary(self) -> str:
        if self.status != "built":
            return self.reason
        refused = (
            f"; {len(self.refused)} refused by the numerical gate: "
            + ", ".join(c.bucket for c in self.refused)
            if self.refused
            else ""
        )
        return (
            f"{len(self.entries)} bucket(s) cached for onnxruntime {self.ort_version} on "
            f"macOS {self.macos_major} ({self.machine}), options {self.options_digest}{refused}"
        )


def record_path(recipe: Recipe) -> Path:
    """e.g. ``models/build/retinaface/precompile.json``."""
    return recipe.build_dir / "precompile.json"


def cache_root(recipe: Recipe) -> Path:
    """e.g. ``models/build/retinaface/coreml``: the package step copies every model's into the
    package's one ``coreml/`` (cache keys are unique across models)."""
    return recipe.build_dir / "coreml"


def precompile(
    recipe: Recipe,
    request: PrecompileRequest | None = None,
    *,
    host: coreml.Host | None = None,
    open_session: OpenSession = _open_coreml_session,
    gate: EntryGate | None = None,
) -> PrecompileResult:
    """Build the CoreML cache for the requested buckets, or record why it was skipped.

    ``gate`` checks each compiled entry's outputs (default: ``coreml_gate.gate_for(recipe)``).
    """
    request = request or PrecompileRequest()
    host = host or coreml.detect_host()
    options = dict(recipe.coreml_options or coreml.DEFAULT_OPTIONS)
    base = {
        "ort_version": host.ort_version,
        "macos_major": host.macos_major,
        "machine": _machine(),
        "provider_options": options,
        "options_digest": coreml.options_digest(options),
    }
    if not host.coreml_available:
        # Nothing from an earlier macOS build may ship with this one.
        shutil.rmtree(cache_root(recipe), ignore_errors=True)
        result = PrecompileResult(status="skipped", reason=SKIPPED, **base)
        write_json(record_path(recipe), result.to_dict())
        return result
    keys = _cache_keys(recipe)
    buckets = [recipe.find_bucket(name) for name in request.buckets] or list(recipe.buckets)
    gate = gate or gate_for(recipe)
    entries, refused = [], []
    with step("precompile"), staging_dir(cache_root(recipe)) as tmp:
        layout = CacheLayout(
            root=tmp,
            ort_version=host.ort_version,
            macos_major=host.macos_major or "",
            digest=base["options_digest"],
        )
        for bucket in buckets:
            path = recipe.bucket_path(bucket)
            if not path.exists() or bucket.name not in keys:
                raise MissingInputError(f"{path}: missing; run `toolchain simplify` first")
            entry, session = _precompile_bucket(
                bucket.name, path.read_bytes(), keys[bucket.name], layout, options, open_session
            )
            try:
                check = gate(bucket, session)
            except Exception as exc:  # ORT's run errors: an entry that cannot run cannot ship
                check = EntryCheck(
                    bucket=bucket.name,
                    passed=False,
                    reason=f"the CoreML session failed to run: {exc}",
                    figures={},
                )
            del session
            if check.passed:
                entries.append(replace(entry, numerics={"passed": True, **check.figures}))
            else:
                shutil.rmtree(layout.entry(entry.key))  # out of tolerance: never staged
                refused.append(check)
    result = PrecompileResult(
        status="built", reason="", entries=tuple(entries), refused=tuple(refused), **base
    )
    write_json(record_path(recipe), result.to_dict())
    return result


def _precompile_bucket(
    name: str,
    model: bytes,
    key: str,
    layout: CacheLayout,
    options: Mapping[str, str],
    open_session: OpenSession,
) -> tuple[CachedBucket, object]:
    """Compile one bucket into ``layout.dir``, check a second session is a cache hit; return
    the entry and that (hit) session, the one the runtime gets.
    """
    entry = layout.entry(key)
    started = time.perf_counter()
    _session(open_session, model, options, layout.dir, name)  # dropped: released before the hit
    compile_seconds = time.perf_counter() - started
    if not entry.is_dir():
        raise GateFailed(
            f"{name}: ORT wrote no cache entry {key}/ in {layout.dir}; check the model's "
            "COREML_CACHE_KEY (letters and digits, at most 64) and the coverage report"
        )
    files = hash_files(entry)
    started = time.perf_counter()
    session = _session(open_session, model, options, layout.dir, name)
    hit_seconds = time.perf_counter() - started
    changed = sorted(set(hash_files(entry).items()) ^ set(files.items()))
    if changed:
        paths = sorted({rel for rel, _ in changed})
        raise GateFailed(f"{name}: the second session was not a cache hit; it wrote {paths}")
    if hit_seconds >= compile_seconds:
        raise GateFailed(
            f"{name}: the second session took {hit_seconds:.2f} s, the compile "
            f"{compile_seconds:.2f} s: not a cache hit"
        )
    prefix = f"coreml/{layout.relative}/{key}"
    entry = CachedBucket(
        bucket=name,
        key=key,
        dir=prefix,
        compile_seconds=round(compile_seconds, 3),
        hit_seconds=round(hit_seconds, 3),
        files={f"{prefix}/{rel}": digest for rel, digest in files.items()},
    )
    return entry, session


def _session(
    open_session: OpenSession, model: bytes, options: Mapping[str, str], cache_dir: Path, name: str
) -> object:
    try:
        return open_session(model, options, cache_dir)
    except Exception as exc:  # ORT raises plain RuntimeError/Fail subclasses
        raise GateFailed(f"{name}: the CoreML session failed: {exc}") from exc


def _cache_keys(recipe: Recipe) -> dict[str, str]:
    from retinaface_coreml_toolchain import simplify

    path = simplify.record_path(recipe)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        raise MissingInputError(
            f"{path}: missing or unreadable; run `toolchain simplify`"
        ) from None
    return {b["bucket"]: b["coreml_cache_key"] for b in record["buckets"]}


def _machine() -> str:
    import platform

    return platform.machine().lower() or "unknown"


def precompile_buckets(recipe: Recipe) -> dict[str, Any]:
    """The pipeline's call: every bucket, the result as the precompile.json record."""
    return precompile(recipe).to_dict()


def render(record: dict[str, Any]) -> str:
    """The skip line alone, or one row per bucket: compile time, hit time, files."""
    if record["status"] != "built":
        return record["reason"]
    header = f"{'bucket':<9} {'compile s':>9} {'hit s':>7} {'files':>5}  entry"
    lines = [header, "-" * len(header)]
    for name, entry in record["entries"].items():
        lines.append(
            f"{name:<9} {entry['compile_seconds']:>9.2f} {entry['hit_seconds']:>7.2f} "
            f"{len(entry['files']):>5}  {entry['dir']}"
        )
    for name, refusal in record.get("refused", {}).items():
        lines.append(f"{name:<9} refused, not shipped: CoreML vs CPU {refusal['reason']}")
    lines.append(record["summary"])
    return "\n".join(lines)
