"""backends.py: cache lookup, never blocking, background compile and swap, describe, warmup.

Off macOS the CoreML boundary is the stand-in compiler (tests/runtime/standin.py) behind a
``Context`` that says "macOS 14 with the CoreML EP"; everything else is real: the packaged
models, the photos, the cache directory, the lock, the worker thread, the CPU sessions.
The tests marked ``coreml`` use the real EP and run only where it exists.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from retinaface_coreml import backends, cache, coreml
from retinaface_coreml.artifacts import load_manifest, sha256_file
from retinaface_coreml.cache import CacheLayout
from retinaface_coreml.detector import FaceDetector
from retinaface_coreml.preprocess import letterbox
from tests.conftest import FACES_DIR, ROOT, coreml_available
from tests.runtime import standin
from tests.runtime.photos import iou, load_photo
from tests.runtime.standin import StandIn

needs_coreml = pytest.mark.skipif(
    not coreml_available(), reason="needs onnxruntime's CoreMLExecutionProvider (macOS wheels)"
)
linux_only = pytest.mark.skipif(sys.platform == "darwin", reason="checks the non-macOS path")

PHOTO = "faceapi_sample1.jpg"  # 1920x1280: bucket 384x640, three faces


class StandIns:
    """Makes one StandIn per opened bucket and remembers them; releases them all at teardown."""

    def __init__(self, tmp_path: Path, *, blocked: bool = False, fail: str | None = None):
        self.events = tmp_path / "events"
        self.release = threading.Event()
        if not blocked:
            self.release.set()
        self.fail = fail
        self.made: list[StandIn] = []

    def __call__(self, manifest, bucket, model, options) -> StandIn:
        made = StandIn(
            key=bucket.coreml_cache_key,
            model=model,
            events=self.events,
            input_name=manifest.model.input,
            output_names=manifest.model.outputs,
            release=self.release,
            fail=self.fail,
        )
        self.made.append(made)
        return made


@pytest.fixture
def manifest(package_models: Path):
    return load_manifest(package_models)


@pytest.fixture
def make_context(tmp_path: Path):
    """``make_context(**standin_kwargs)`` -> (Context for a macOS 14 host, its StandIns)."""
    made: list[StandIns] = []

    def make(*, cache_dir: Path | None = None, ort_version: str | None = None, **kwargs):
        factory = StandIns(tmp_path, **kwargs)
        made.append(factory)
        host = coreml.Host(
            ort_version=ort_version or onnxruntime.__version__,
            providers=(coreml.EP, coreml.CPU_EP),
            macos_major="14",
            system="darwin",
        )
        env = {cache.ENV_VAR: str(cache_dir or tmp_path / "cache")}
        return backends.Context(host=host, env=env, factory=factory), factory

    yield make
    for factory in made:  # never leave the shared worker thread blocked for the next test
        factory.release.set()


def layout_of(context: backends.Context, manifest) -> CacheLayout:
    return CacheLayout(
        root=Path(context.env[cache.ENV_VAR]),
        ort_version=context.host.ort_version,
        macos_major="14",
        digest=coreml.options_digest(backends.coreml_options(manifest)),
    )


def photo_tensor(manifest, bucket) -> np.ndarray:
    tensor, _ = letterbox(load_photo(PHOTO), bucket.height, bucket.width, manifest.model.mean_bgr)
    return tensor


def cpu_outputs(manifest, bucket, tensor) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(
        manifest.read_verified(bucket.file), providers=[coreml.CPU_EP]
    )
    return session.run(list(manifest.model.outputs), {manifest.model.input: tensor})


def wait_swapped(runner) -> None:
    assert runner.pending is not None, "no background compile was started"
    runner.pending.result(timeout=300)


@linux_only
def test_describe_and_warmup_say_coreml_is_unavailable_here(manifest):
    record = backends.describe(manifest)
    assert record["backend"] == "cpu" and record["coreml"]["available"] is False
    assert "CoreML is unavailable here" in record["coreml"]["reason"]
    assert "CPU backend is in use" in record["coreml"]["reason"]
    assert {b["coreml_cache"] for b in record["buckets"]} == {"unavailable"}
    lines: list[str] = []
    backends.warmup(manifest, manifest.buckets, progress=lines.append)
    assert "CoreML is unavailable here" in lines[0] and len(lines) == 1 + len(manifest.buckets)


@linux_only
def test_the_linux_cpu_path_never_loads_the_cache_modules(package_models):
    script = f"""
import json, sys, cv2
from retinaface_coreml import FaceDetector
detector = FaceDetector(models_dir={str(package_models)!r})
faces = detector.detect(cv2.imread({str(FACES_DIR / PHOTO)!r}))
names = ("filelock", "platformdirs", "retinaface_coreml.cache", "retinaface_coreml.compiler")
print(json.dumps([len(faces), [n for n in names if n in sys.modules]]))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [3, []]


def test_no_entry_serves_from_cpu_at_once_then_swaps(manifest, make_context):
    context, factory = make_context(blocked=True)
    bucket = manifest.bucket("384x640")
    tensor = photo_tensor(manifest, bucket)
    runner = backends.open_runner(manifest, bucket, context=context)
    # The compile is blocked on an event: anything served now was served before it finished.
    assert runner.backend == "cpu" and not runner.pending.done()
    expected = cpu_outputs(manifest, bucket, tensor)
    for got, want in zip(runner.run(tensor), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert not runner.pending.done()
    factory.release.set()
    wait_swapped(runner)
    assert runner.backend == standin.BACKEND
    for got, want in zip(runner.run(tensor), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert standin.compiles(factory.events) == 1
    assert cache.check_entry(layout_of(context, manifest).entry(bucket.coreml_cache_key)) is None


def test_the_detector_finds_faces_before_the_slow_compile_finishes(
    manifest, make_context, monkeypatch, package_models
):
    context, factory = make_context(blocked=True)
    monkeypatch.setattr(backends, "current_context", lambda: context)
    detector = FaceDetector(models_dir=package_models)
    before = detector.detect(load_photo(PHOTO))
    assert (detector.backend, len(before)) == ("cpu", 3)
    assert standin.compiles(factory.events) == 1 and not factory.made[0].calls  # still compiling
    factory.release.set()
    wait_swapped(detector._runners["384x640"])
    after = detector.detect(load_photo(PHOTO))
    assert detector.backend == standin.BACKEND
    assert [round(iou(a.box, b.box), 6) for a, b in zip(before, after, strict=True)] == [1.0] * 3


def test_an_explicit_coreml_backend_compiles_in_the_foreground(manifest, make_context):
    context, factory = make_context()
    runner = backends.open_runner(
        manifest, manifest.bucket("640x384"), context=context, backend="coreml"
    )
    # Returned only after the compile: no swap pending, already on the (stand-in) CoreML session.
    assert not isinstance(runner, backends.SwapRunner) and runner.backend == standin.BACKEND
    assert [e.split()[0] for e in standin.events(factory.events)] == ["compile", "hit"]


def test_an_entry_in_the_user_cache_opens_at_once(manifest, make_context):
    context, factory = make_context()
    bucket = manifest.bucket("384x640")
    first = backends.open_runner(manifest, bucket, context=context)
    wait_swapped(first)
    again = backends.open_runner(manifest, bucket, context=context)
    assert again.backend == standin.BACKEND and not isinstance(again, backends.SwapRunner)
    assert standin.compiles(factory.events) == 1
    assert factory.made[-1].calls == ["hit"]


def test_a_read_only_cache_dir_means_cpu_and_one_warning_naming_it(
    manifest, make_context, tmp_path, caplog
):
    # Tests run as root, where chmod does not deny writes; a path below a regular file cannot
    # be created by anyone, so the writability probe fails for real.
    (tmp_path / "not-a-dir").write_text("a regular file")
    cache_dir = tmp_path / "not-a-dir" / "cache"
    context, factory = make_context(cache_dir=cache_dir)
    runners = [backends.open_runner(manifest, b, context=context) for b in manifest.buckets]
    assert {r.backend for r in runners} == {"cpu"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and str(cache_dir) in warnings[0] and "not writable" in warnings[0]
    assert factory.made and all(not s.calls for s in factory.made)  # never compiled nor loaded
    assert not standin.events(factory.events)
    record = backends.describe(manifest, context=context)
    assert record["cache"]["writable"] is False and str(cache_dir) in record["coreml"]["reason"]


@pytest.mark.parametrize("damage", ["partial", "corrupt"])
def test_a_partial_or_corrupt_entry_is_never_loaded_and_is_rebuilt(manifest, make_context, damage):
    context, factory = make_context()
    bucket = manifest.bucket("384x640")
    wait_swapped(backends.open_runner(manifest, bucket, context=context))
    entry = layout_of(context, manifest).entry(bucket.coreml_cache_key)
    if damage == "partial":  # what a process killed inside ORT's compile leaves behind
        (entry / cache.ENTRY_RECORD).unlink()
    else:
        model_file = entry / standin.MODEL_FILE
        model_file.write_bytes(model_file.read_bytes()[:4096])
    factory.release.clear()
    runner = backends.open_runner(manifest, bucket, context=context)
    assert runner.backend == "cpu"
    assert factory.made[-1].calls == []  # the damaged entry was not opened
    factory.release.set()
    wait_swapped(runner)
    assert runner.backend == standin.BACKEND
    assert factory.made[-1].calls == ["compiled", "hit"]  # opened only once rebuilt
    assert standin.compiles(factory.events) == 2 and cache.check_entry(entry) is None


def test_an_entry_from_another_ort_version_is_not_used(manifest, make_context):
    old, _ = make_context(ort_version="1.31.0")
    bucket = manifest.bucket("384x640")
    wait_swapped(backends.open_runner(manifest, bucket, context=old))
    old_entry = layout_of(old, manifest).entry(bucket.coreml_cache_key)
    assert cache.check_entry(old_entry) is None
    context, factory = make_context(blocked=True)
    states = {b["name"]: b for b in backends.describe(manifest, context=context)["buckets"]}
    assert states["384x640"]["coreml_cache"] == cache.STALE
    assert "1.31.0" in states["384x640"]["coreml_cache_detail"]
    runner = backends.open_runner(manifest, bucket, context=context)
    assert runner.backend == "cpu" and factory.made[-1].calls == []
    factory.release.set()
    wait_swapped(runner)
    new_entry = layout_of(context, manifest).entry(bucket.coreml_cache_key)
    assert new_entry != old_entry and cache.check_entry(new_entry) is None
    compiled_in = [e.split()[-1] for e in standin.events(factory.events) if e.startswith("hit")]
    assert compiled_in[-1] == str(new_entry.parent)


def shipped_package(manifest, dest: Path, layout: CacheLayout, key: str) -> Path:
    """A copy of the package models shipping an entry for ``key`` built for ``layout``."""
    shutil.copytree(manifest.root, dest, ignore=shutil.ignore_patterns("coreml"))
    built = StandIn(key=key, model=manifest.read_verified("384x640.onnx"), events=dest / "x")
    built(dest / "coreml" / layout.relative)
    (dest / "x").unlink()
    record = json.loads((dest / "manifest.json").read_text())
    record["files"] = {k: v for k, v in record["files"].items() if not k.startswith("coreml/")}
    for path in sorted((dest / "coreml").rglob("*")):
        if path.is_file():
            record["files"][path.relative_to(dest).as_posix()] = sha256_file(path)
    (dest / "manifest.json").write_text(json.dumps(record))
    return dest


def test_a_matching_shipped_entry_is_installed_once_and_used_at_once(
    manifest, make_context, tmp_path
):
    context, factory = make_context(blocked=True)
    bucket = manifest.bucket("384x640")
    layout = layout_of(context, manifest)
    shipped = load_manifest(
        shipped_package(manifest, tmp_path / "pkg", layout, bucket.coreml_cache_key)
    )
    state = backends.describe(shipped, context=context)["buckets"]
    assert {b["name"]: b["coreml_cache"] for b in state}["384x640"] == cache.SHIPPED
    runner = backends.open_runner(shipped, bucket, context=context)
    assert runner.backend == standin.BACKEND and factory.made[-1].calls == ["hit"]
    assert standin.compiles(factory.events) == 0
    installed = layout.entry(bucket.coreml_cache_key)
    assert cache.check_entry(installed) is None
    stamp = (installed / cache.ENTRY_RECORD).stat().st_mtime_ns
    backends.open_runner(shipped, bucket, context=context)
    assert (installed / cache.ENTRY_RECORD).stat().st_mtime_ns == stamp  # not copied again
    state = backends.describe(shipped, context=context)["buckets"]
    assert {b["name"]: b["coreml_cache"] for b in state}["384x640"] == cache.IN_USER_CACHE


def test_shipped_entries_for_another_ort_or_tampered_ones_are_not_installed(
    manifest, make_context, tmp_path, caplog
):
    context, factory = make_context(blocked=True)
    layout = layout_of(context, manifest)
    key = manifest.bucket("384x640").coreml_cache_key
    other = CacheLayout(root=layout.root, ort_version="1.31.0", macos_major="14", digest="x")
    stale = load_manifest(shipped_package(manifest, tmp_path / "stale", other, key))
    runner = backends.open_runner(stale, stale.bucket("384x640"), context=context)
    assert runner.backend == "cpu" and not layout.entry(key).exists()
    key = manifest.bucket("640x640").coreml_cache_key
    tampered_root = shipped_package(manifest, tmp_path / "tampered", layout, key)
    (tampered_root / "coreml" / layout.relative / key / "model.txt").write_text("changed")
    tampered = load_manifest(tampered_root)
    runner = backends.open_runner(tampered, tampered.bucket("640x640"), context=context)
    assert runner.backend == "cpu" and not layout.entry(key).exists()
    assert any("not using the shipped CoreML entry" in r.getMessage() for r in caplog.records)
    # Neither was loaded: the first is compiling in the background, the second queued.
    assert [e.split()[0] for e in standin.events(factory.events)] == ["compile"]


def test_a_busy_lock_never_blocks_opening_a_runner(manifest, make_context, tmp_path, monkeypatch):
    """Another process holds the key's lock: the shipped copy is not waited for, CPU serves."""
    import filelock

    context, factory = make_context(blocked=True)
    layout = layout_of(context, manifest)
    bucket = manifest.bucket("384x640")
    shipped = load_manifest(
        shipped_package(manifest, tmp_path / "pkg", layout, bucket.coreml_cache_key)
    )
    monkeypatch.setattr(backends, "INSTALL_WAIT", 0.05)
    layout.dir.mkdir(parents=True)
    holder = filelock.FileLock(layout.lock_path(bucket.coreml_cache_key))
    holder.acquire()
    try:
        runner = backends.open_runner(shipped, bucket, context=context)
        assert runner.backend == "cpu" and runner.pending is not None
    finally:
        holder.release()
    factory.release.set()
    wait_swapped(runner)
    # Under the lock the background job found no entry and compiled (the holder published none).
    assert runner.backend == standin.BACKEND


def test_a_failing_background_compile_stays_on_cpu_logs_once_and_describe_says_so(
    manifest, make_context, caplog
):
    context, _ = make_context(fail="stand-in: CoreML compiler crashed")
    bucket = manifest.bucket("384x640")
    tensor = photo_tensor(manifest, bucket)
    runner = backends.open_runner(manifest, bucket, context=context)
    with pytest.raises(Exception, match="crashed"):
        runner.pending.result(timeout=300)
    outputs = [runner.run(tensor) for _ in range(3)]
    assert runner.backend == "cpu" and "crashed" in runner.compile_error
    for got, want in zip(outputs[-1], cpu_outputs(manifest, bucket, tensor), strict=True):
        np.testing.assert_array_equal(got, want)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "crashed" in warnings[0]
    state = {b["name"]: b for b in backends.describe(manifest, context=context)["buckets"]}
    assert state["384x640"]["coreml_cache"] == cache.FAILED
    assert "crashed" in state["384x640"]["coreml_cache_detail"]
    assert not layout_of(context, manifest).entry(bucket.coreml_cache_key).exists()


def test_warmup_compiles_in_the_foreground_and_reports_stages(manifest, make_context):
    context, factory = make_context()
    buckets = [manifest.bucket("384x640"), manifest.bucket("640x640")]
    lines: list[str] = []
    backends.warmup(manifest, buckets, progress=lines.append, context=context)
    assert lines[0].startswith("CoreML cache: ")
    assert any(line.startswith("384x640: compiling for CoreML") for line in lines)
    assert any(line.startswith("640x640: compiled and loaded in") for line in lines)
    assert "the last compile took" in next(line for line in lines if line.startswith("640x640"))
    states = {b["name"]: b for b in backends.describe(manifest, context=context)["buckets"]}
    assert states["384x640"]["coreml_cache"] == states["640x640"]["coreml_cache"] == "in user cache"
    assert standin.compiles(factory.events) == 2
    lines.clear()
    backends.warmup(manifest, buckets, progress=lines.append, context=context)
    assert "384x640: CoreML entry in the user cache; loading it" in lines


def test_warmup_raises_after_reporting_a_failed_compile(manifest, make_context):
    from retinaface_coreml.compiler import CompileError

    context, _ = make_context(fail="stand-in: out of memory")
    lines: list[str] = []
    with pytest.raises(CompileError, match="out of memory"):
        backends.warmup(
            manifest, [manifest.bucket("640x384")], progress=lines.append, context=context
        )
    assert "the CPU backend will be used" in lines[-1]


# --- the real CoreML EP (macOS) -------------------------------------------------------------


@pytest.fixture
def real_context(tmp_path: Path) -> backends.Context:
    return backends.Context(host=coreml.detect_host(), env={cache.ENV_VAR: str(tmp_path / "cache")})


@pytest.mark.coreml
@needs_coreml
def test_coreml_first_launch_serves_cpu_then_swaps_to_coreml(
    manifest, real_context, monkeypatch, package_models
):
    photo = load_photo(PHOTO)
    on_cpu = FaceDetector(backend="cpu", models_dir=package_models).detect(photo)
    monkeypatch.setattr(backends, "current_context", lambda: real_context)
    detector = FaceDetector(models_dir=package_models)
    detector.detect(photo)
    runner = detector._runners["384x640"]
    assert isinstance(runner, backends.SwapRunner)  # open_runner did not wait for the compile
    wait_swapped(runner)
    faces = detector.detect(photo)
    assert detector.backend == "coreml"
    # CoreML may compute in float16: the same faces, not the same bits.
    assert len(faces) == len(on_cpu)
    assert all(iou(a.box, b.box) > 0.9 for a, b in zip(faces, on_cpu, strict=True))


@pytest.mark.coreml
@needs_coreml
def test_coreml_second_open_is_a_cache_hit_that_changes_nothing(manifest, real_context):
    bucket = manifest.bucket("640x640")
    wait_swapped(backends.open_runner(manifest, bucket, context=real_context))
    entry = layout_of(real_context, manifest).entry(bucket.coreml_cache_key)
    before = cache.hash_files(entry)
    runner = backends.open_runner(manifest, bucket, context=real_context)
    assert runner.backend == "coreml" and not isinstance(runner, backends.SwapRunner)
    assert cache.hash_files(entry) == before and cache.check_entry(entry) is None


@pytest.mark.coreml
@needs_coreml
def test_coreml_shipped_cache_of_this_wheel_is_used_at_once(manifest, real_context):
    record = manifest.raw.get("coreml_cache") or {}
    host = real_context.host
    if (record.get("ort_version"), record.get("macos_major")) != (
        host.ort_version,
        host.macos_major,
    ):
        pytest.skip(
            f"this build ships no entry for ORT {host.ort_version} / macOS {host.macos_major}"
        )
    runner = backends.open_runner(manifest, manifest.bucket("480x640"), context=real_context)
    assert runner.backend == "coreml" and not isinstance(runner, backends.SwapRunner)
