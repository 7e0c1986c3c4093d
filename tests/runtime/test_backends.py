"""backends.py: cache lookup, never blocking, the compile child, back-off, describe, warmup.

Off macOS the CoreML boundary is the stand-in (tests/runtime/standin.py) at the runtime's two
seams, ``coreml.detect_host`` ("macOS 14 with the CoreML EP") and ``coreml.create_session``, in
this process and in the compile child; everything else is real: the packaged models, the
photos, the cache directory, the lock, the child process, the CPU sessions.
The tests marked ``coreml`` use the real EP and run only where it exists.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from retinaface_coreml import coreml
from retinaface_coreml.artifacts import load_manifest, sha256_file
from retinaface_coreml.detector import FaceDetector
from retinaface_coreml.packaged import backends, cache, compile_process
from retinaface_coreml.packaged.cache import CacheLayout
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


class MacHost:
    """The stand-in CoreML EP at both seams, here and in the compile child; a temp user cache."""

    def __init__(self, monkeypatch, tmp_path: Path) -> None:
        self.monkeypatch = monkeypatch
        self.events = tmp_path / "events"
        self.cache_dir = tmp_path / "cache"
        monkeypatch.setenv(cache.ENV_VAR, str(self.cache_dir))
        monkeypatch.setattr(backends, "POLL_SECONDS", 0.0)
        self.use()

    def use(self, **config) -> None:
        """(Re)configure the stand-in, e.g. ``use(fail="...", compile_seconds=2)``."""
        standin.activate(self.monkeypatch, self.events, **{"compile_seconds": 0.2, **config})

    def layout(self, manifest, ort_version: str | None = None) -> CacheLayout:
        return CacheLayout(
            root=self.cache_dir,
            ort_version=ort_version or onnxruntime.__version__,
            macos_major=coreml.detect_host().macos_major,
            digest=coreml.options_digest(backends.recipe_options(manifest.model)),
        )

    def kinds(self) -> list[str]:
        """The stand-in's events so far, e.g. ``["compile", "hit"]``."""
        return [line.split()[0] for line in standin.events(self.events)]


def retina(root: Path) -> backends.Target:
    """RetinaFace's model in the models dir at ``root``, with its recipe's CoreML options."""
    packaged = load_manifest(root)
    return backends.target(packaged, packaged.detector_model())


@pytest.fixture
def manifest(package_models: Path) -> backends.Target:
    return retina(package_models)


@pytest.fixture
def mac(monkeypatch, tmp_path: Path) -> MacHost:
    return MacHost(monkeypatch, tmp_path)


def photo_tensor(manifest, bucket) -> np.ndarray:
    tensor, _ = letterbox(
        load_photo(PHOTO), bucket.height, bucket.width, manifest.model.detector.mean_bgr
    )
    return tensor


def cpu_outputs(manifest, bucket, tensor) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(
        manifest.manifest.read_verified(bucket.file), providers=[coreml.CPU_EP]
    )
    return session.run(list(manifest.model.output_names), {manifest.model.detector.input: tensor})


def settle(runner, tensor) -> None:
    """Wait for the runner's compile child to end, then let one ``run`` take its result."""
    assert isinstance(runner, backends.PendingRunner), "no compile child was started"
    assert runner.process is not None
    runner.process.wait(timeout=300)
    runner.run({"input": tensor})


@linux_only
def test_describe_and_warmup_say_coreml_is_unavailable_here(manifest):
    record = backends.describe(manifest)
    assert record["backend"] == "cpu" and record["coreml"]["available"] is False
    assert "CoreML is unavailable here" in record["coreml"]["reason"]
    assert "CPU backend is in use" in record["coreml"]["reason"]
    assert {b["coreml_cache"] for b in record["buckets"]} == {"unavailable"}
    lines: list[str] = []
    backends.warmup(manifest, manifest.model.buckets, progress=lines.append)
    assert "CoreML is unavailable here" in lines[0] and len(lines) == 1 + len(
        manifest.model.buckets
    )


@linux_only
def test_the_linux_cpu_path_never_loads_the_cache_modules(package_models):
    script = f"""
import json, sys, cv2
from retinaface_coreml import FaceDetector
detector = FaceDetector(models_dir={str(package_models)!r})
faces = detector.detect(cv2.imread({str(FACES_DIR / PHOTO)!r}))
names = ("filelock", "platformdirs", "retinaface_coreml.packaged.cache",
         "retinaface_coreml.packaged.compiler")
print(json.dumps([len(faces), [n for n in names if n in sys.modules]]))
"""
    # Without the cache dir override: finding the default root would import platformdirs.
    env = {k: v for k, v in os.environ.items() if k != cache.ENV_VAR}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [3, []]


def test_no_entry_serves_from_cpu_at_once_then_loads_what_the_child_published(manifest, mac):
    mac.use(compile_seconds=1.5)
    bucket = manifest.model.bucket("384x640")
    tensor = photo_tensor(manifest, bucket)
    runner = backends.open_runner(manifest, bucket)
    assert runner.backend == "cpu" and runner.process.poll() is None  # the child still compiles
    expected = cpu_outputs(manifest, bucket, tensor)
    for got, want in zip(runner.run({"input": tensor}), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    settle(runner, tensor)
    assert runner.backend == "coreml" and runner.process is None
    for got, want in zip(runner.run({"input": tensor}), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    # The child compiled (and checked its entry loads); this process only loaded a hit.
    compile_line, *hit_lines = standin.events(mac.events)
    assert compile_line.split()[:2] != ["compile", str(os.getpid())]
    assert [line.split()[:2] for line in hit_lines][-1] == ["hit", str(os.getpid())]
    assert standin.compiles(mac.events) == 1
    layout = mac.layout(manifest)
    assert cache.check_entry(layout.entry(bucket.coreml_cache_key)) is None
    assert "compiled 384x640" in layout.log_path(bucket.coreml_cache_key).read_text()


def test_the_detector_finds_faces_before_the_slow_compile_finishes(manifest, mac, package_models):
    mac.use(compile_seconds=3)
    detector = FaceDetector(models_dir=package_models)
    before = detector.detect(load_photo(PHOTO))
    assert (detector.backend, len(before)) == ("cpu", 3)
    runner = detector._runners["384x640"]
    assert runner.process.poll() is None  # still compiling
    settle(runner, photo_tensor(manifest, manifest.model.bucket("384x640")))
    after = detector.detect(load_photo(PHOTO))
    assert detector.backend == "coreml"
    assert [round(iou(a.box, b.box), 6) for a, b in zip(before, after, strict=True)] == [1.0] * 3


def test_no_ort_session_is_ever_created_off_the_calling_thread(manifest, mac, monkeypatch):
    """ORT 1.21-1.30 holds the GIL while it creates a session; 1.31+ aborts at exit when a
    thread is inside one. So no thread of the caller's process ever creates one."""
    threads: list[str] = []
    real = onnxruntime.InferenceSession.__init__

    def spy(self, *args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(onnxruntime.InferenceSession, "__init__", spy)
    bucket = manifest.model.bucket("384x640")
    runner = backends.open_runner(manifest, bucket)
    settle(runner, photo_tensor(manifest, bucket))
    assert runner.backend == "coreml"
    assert threads and set(threads) == {threading.main_thread().name}
    assert threading.active_count() == 1


def test_an_explicit_coreml_backend_compiles_in_a_child_in_the_foreground(manifest, mac):
    runner = backends.open_runner(manifest, manifest.model.bucket("640x384"), backend="coreml")
    # Returned only after the compile: nothing pending, already on the (stand-in) CoreML session.
    assert not isinstance(runner, backends.PendingRunner) and runner.backend == "coreml"
    (compiled, *_), loaded = standin.events(mac.events)[:-1], standin.events(mac.events)[-1]
    assert compiled.split()[0] == "compile" and compiled.split()[1] != str(os.getpid())
    assert loaded.split()[:2] == ["hit", str(os.getpid())]


def test_an_entry_in_the_user_cache_opens_at_once(manifest, mac):
    bucket = manifest.model.bucket("384x640")
    settle(backends.open_runner(manifest, bucket), photo_tensor(manifest, bucket))
    again = backends.open_runner(manifest, bucket)
    assert again.backend == "coreml" and not isinstance(again, backends.PendingRunner)
    assert standin.compiles(mac.events) == 1 and mac.kinds()[-1] == "hit"


def test_a_read_only_cache_dir_means_cpu_and_one_warning_naming_it(
    manifest, mac, tmp_path, caplog, monkeypatch
):
    # Tests run as root, where chmod does not deny writes; a path below a regular file cannot
    # be created by anyone, so the writability probe fails for real.
    (tmp_path / "not-a-dir").write_text("a regular file")
    cache_dir = tmp_path / "not-a-dir" / "cache"
    monkeypatch.setenv(cache.ENV_VAR, str(cache_dir))
    runners = [backends.open_runner(manifest, b) for b in manifest.model.buckets]
    assert {r.backend for r in runners} == {"cpu"}
    assert not any(isinstance(r, backends.PendingRunner) for r in runners)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and str(cache_dir) in warnings[0] and "not writable" in warnings[0]
    assert not standin.events(mac.events)  # never compiled nor loaded
    record = backends.describe(manifest)
    assert record["cache"]["writable"] is False and str(cache_dir) in record["coreml"]["reason"]


@pytest.mark.parametrize("damage", ["partial", "corrupt"])
def test_a_partial_or_corrupt_entry_is_never_loaded_and_is_rebuilt(manifest, mac, damage):
    bucket = manifest.model.bucket("384x640")
    tensor = photo_tensor(manifest, bucket)
    settle(backends.open_runner(manifest, bucket), tensor)
    entry = mac.layout(manifest).entry(bucket.coreml_cache_key)
    if damage == "partial":  # what a process killed inside ORT's compile leaves behind
        (entry / cache.ENTRY_RECORD).unlink()
    else:
        model_file = entry / standin.MODEL_FILE
        model_file.write_bytes(model_file.read_bytes()[:4096])
    events_before = len(standin.events(mac.events))
    runner = backends.open_runner(manifest, bucket)
    assert runner.backend == "cpu"
    settle(runner, tensor)
    assert runner.backend == "coreml"
    # Rebuilt by the child (compile, its own check), then loaded here: the damaged one never.
    assert mac.kinds()[events_before:] == ["compile", "hit", "hit"]
    assert cache.check_entry(entry) is None


def test_an_entry_from_another_ort_version_is_not_used(manifest, mac):
    bucket = manifest.model.bucket("384x640")
    tensor = photo_tensor(manifest, bucket)
    mac.use(ort_version="1.31.0")
    settle(backends.open_runner(manifest, bucket), tensor)
    old_entry = mac.layout(manifest, "1.31.0").entry(bucket.coreml_cache_key)
    assert cache.check_entry(old_entry) is None
    mac.use()
    states = {b["name"]: b for b in backends.describe(manifest)["buckets"]}
    assert states["384x640"]["coreml_cache"] == cache.STALE
    assert "1.31.0" in states["384x640"]["coreml_cache_detail"]
    runner = backends.open_runner(manifest, bucket)
    assert runner.backend == "cpu"
    settle(runner, tensor)
    new_entry = mac.layout(manifest).entry(bucket.coreml_cache_key)
    assert new_entry != old_entry and cache.check_entry(new_entry) is None
    loaded_from = [e.split()[-1] for e in standin.events(mac.events) if e.startswith("hit")]
    assert loaded_from[-1] == str(new_entry.parent)


def shipped_package(manifest, dest: Path, layout: CacheLayout, key: str) -> Path:
    """A copy of the package models shipping an entry for ``key`` built for ``layout``."""
    shutil.copytree(manifest.manifest.root, dest, ignore=shutil.ignore_patterns("coreml"))
    built = StandIn(
        key=key, model=manifest.manifest.read_verified("retinaface/384x640.onnx"), events=dest / "x"
    )
    built(dest / "coreml" / layout.relative)
    (dest / "x").unlink()
    record = json.loads((dest / "manifest.json").read_text())
    record["files"] = {k: v for k, v in record["files"].items() if not k.startswith("coreml/")}
    for path in sorted((dest / "coreml").rglob("*")):
        if path.is_file():
            record["files"][path.relative_to(dest).as_posix()] = sha256_file(path)
    (dest / "manifest.json").write_text(json.dumps(record))
    return dest


def built_on(layout: CacheLayout, macos: str) -> CacheLayout:
    return CacheLayout(
        root=layout.root, ort_version=layout.ort_version, macos_major=macos, digest=layout.digest
    )


@pytest.mark.parametrize(("built", "host"), [("14", "14"), ("14", "15"), ("14", "26")])
def test_a_shipped_entry_from_this_or_an_older_macos_is_installed_once_and_used_at_once(
    manifest, mac, tmp_path, built, host
):
    mac.use(macos=host)
    bucket = manifest.model.bucket("384x640")
    layout = mac.layout(manifest)
    shipped = retina(
        shipped_package(
            manifest, tmp_path / "pkg", built_on(layout, built), bucket.coreml_cache_key
        )
    )
    state = backends.describe(shipped, context=None)["buckets"]
    assert {b["name"]: b["coreml_cache"] for b in state}["384x640"] == cache.SHIPPED
    runner = backends.open_runner(shipped, bucket)
    assert runner.backend == "coreml" and not isinstance(runner, backends.PendingRunner)
    assert mac.kinds() == ["hit"]
    installed = layout.entry(bucket.coreml_cache_key)
    assert layout.macos_major == host and cache.check_entry(installed) is None
    stamp = (installed / cache.ENTRY_RECORD).stat().st_mtime_ns
    backends.open_runner(shipped, bucket)
    assert (installed / cache.ENTRY_RECORD).stat().st_mtime_ns == stamp  # not copied again
    state = backends.describe(shipped)["buckets"]
    assert {b["name"]: b["coreml_cache"] for b in state}["384x640"] == cache.IN_USER_CACHE


def test_shipped_entries_for_a_newer_macos_another_ort_or_tampered_are_not_installed(
    manifest, mac, tmp_path, caplog
):
    mac.use(compile_seconds=30)  # every child is still compiling when the test ends
    layout = mac.layout(manifest)
    opened = []
    key = manifest.model.bucket("384x640").coreml_cache_key
    other = CacheLayout(root=layout.root, ort_version="1.31.0", macos_major="14", digest="x")
    stale = retina(shipped_package(manifest, tmp_path / "stale", other, key))
    opened.append(backends.open_runner(stale, stale.model.bucket("384x640")))
    key = manifest.model.bucket("640x640").coreml_cache_key
    newer = retina(shipped_package(manifest, tmp_path / "newer", built_on(layout, "15"), key))
    opened.append(backends.open_runner(newer, newer.model.bucket("640x640")))
    key = manifest.model.bucket("480x640").coreml_cache_key
    tampered_root = shipped_package(manifest, tmp_path / "tampered", layout, key)
    (tampered_root / "coreml" / layout.relative / key / "model.txt").write_text("changed")
    tampered = retina(tampered_root)
    opened.append(backends.open_runner(tampered, tampered.model.bucket("480x640")))
    assert [r.backend for r in opened] == ["cpu"] * 3
    assert not any(layout.entry(b.coreml_cache_key).exists() for b in manifest.model.buckets)
    assert any("not using the shipped CoreML entry" in r.getMessage() for r in caplog.records)
    assert "hit" not in mac.kinds()  # none was loaded; each bucket's child compiles instead
    for runner in opened:
        runner.process.kill()
        runner.process.wait()


def test_a_busy_lock_never_blocks_opening_a_runner(manifest, mac, tmp_path, monkeypatch):
    """Another process holds the key's lock: the shipped copy is not waited for, CPU serves."""
    import filelock

    layout = mac.layout(manifest)
    bucket = manifest.model.bucket("384x640")
    shipped = retina(shipped_package(manifest, tmp_path / "pkg", layout, bucket.coreml_cache_key))
    monkeypatch.setattr(backends, "INSTALL_WAIT", 0.05)
    layout.dir.mkdir(parents=True)
    holder = filelock.FileLock(layout.lock_path(bucket.coreml_cache_key))
    holder.acquire()
    try:
        runner = backends.open_runner(shipped, bucket)
        assert runner.backend == "cpu" and runner.process is not None
    finally:
        holder.release()
    settle(runner, photo_tensor(manifest, bucket))
    # Under the lock the child found no entry and compiled (the holder published none).
    assert runner.backend == "coreml" and mac.kinds()[0] == "compile"


def test_a_failed_compile_stays_on_cpu_logs_once_is_recorded_and_backs_off(
    manifest, mac, caplog, monkeypatch
):
    mac.use(fail="stand-in: CoreML compiler crashed")
    bucket = manifest.model.bucket("384x640")
    tensor = photo_tensor(manifest, bucket)
    runner = backends.open_runner(manifest, bucket)
    settle(runner, tensor)
    outputs = [runner.run({"input": tensor}) for _ in range(3)]
    assert runner.backend == "cpu" and "crashed" in runner.error
    for got, want in zip(outputs[-1], cpu_outputs(manifest, bucket, tensor), strict=True):
        np.testing.assert_array_equal(got, want)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "crashed" in warnings[0]
    layout = mac.layout(manifest)
    failure = cache.read_failure(layout, bucket.coreml_cache_key)
    assert failure.ort_version == onnxruntime.__version__ and "crashed" in failure.error
    state = {b["name"]: b for b in backends.describe(manifest)["buckets"]}
    assert state["384x640"]["coreml_cache"] == cache.FAILED
    detail = state["384x640"]["coreml_cache_detail"]
    assert "crashed" in detail and "not retried for 24 h" in detail and "warmup" in detail
    assert not layout.entry(bucket.coreml_cache_key).exists()
    # The next launch (same ORT, within a day) starts no compile at all.
    mac.use()
    again = backends.open_runner(manifest, bucket)
    assert again.backend == "cpu" and not isinstance(again, backends.PendingRunner)
    assert standin.compiles(mac.events) == 1
    # A day later, or on another ORT version, it is tried again.
    later = time.time() + cache.RETRY_AFTER + 60
    monkeypatch.setattr(backends.time, "time", lambda: later)
    retried = backends.open_runner(manifest, bucket)
    settle(retried, tensor)
    assert (
        retried.backend == "coreml" and cache.read_failure(layout, bucket.coreml_cache_key) is None
    )


def test_a_failure_on_another_ort_version_does_not_hold_back_this_one(manifest, mac):
    bucket = manifest.model.bucket("384x640")
    layout = mac.layout(manifest)
    layout.dir.mkdir(parents=True)
    record = {"error": "old crash", "at": time.time(), "ort_version": "1.31.0"}
    layout.failure_path(bucket.coreml_cache_key).write_text(json.dumps(record))
    runner = backends.open_runner(manifest, bucket)
    assert isinstance(runner, backends.PendingRunner)
    settle(runner, photo_tensor(manifest, bucket))
    assert runner.backend == "coreml"


def test_an_entry_that_fails_to_load_is_moved_aside_and_not_retried(manifest, mac, monkeypatch):
    bucket = manifest.model.bucket("384x640")
    tensor = photo_tensor(manifest, bucket)
    settle(backends.open_runner(manifest, bucket), tensor)
    layout = mac.layout(manifest)
    entry = layout.entry(bucket.coreml_cache_key)
    assert cache.check_entry(entry) is None

    def refuse(model, **_):
        raise RuntimeError("stand-in: Core ML cannot load this compiled model")

    monkeypatch.setattr(coreml, "create_session", refuse)  # this process only: a bad OS update
    runner = backends.open_runner(manifest, bucket)
    assert runner.backend == "cpu" and not isinstance(runner, backends.PendingRunner)
    assert not entry.exists() and (layout.dir / f".bad-{bucket.coreml_cache_key}").is_dir()
    failure = cache.read_failure(layout, bucket.coreml_cache_key)
    assert "cannot load this compiled model" in failure.error
    events = len(standin.events(mac.events))
    again = backends.open_runner(manifest, bucket)  # the next launch: backed off, no compile
    assert again.backend == "cpu" and len(standin.events(mac.events)) == events
    state = {b["name"]: b for b in backends.describe(manifest)["buckets"]}
    assert state["384x640"]["coreml_cache"] == cache.FAILED


def test_warmup_compiles_in_the_foreground_and_reports_stages(manifest, mac, monkeypatch):
    mac.use(compile_seconds=1.2)
    real_wait = compile_process.wait
    monkeypatch.setattr(
        compile_process,
        "wait",
        lambda process, report, tick: real_wait(process, report=report, tick=0.3),
    )
    buckets = [manifest.model.bucket("384x640"), manifest.model.bucket("640x640")]
    lines: list[str] = []
    backends.warmup(manifest, buckets, progress=lines.append)
    assert lines[0].startswith("CoreML cache: ")
    assert any(line.startswith("384x640: compiling for CoreML") for line in lines)
    assert any(re.fullmatch(r"384x640: compiling for CoreML… \d+ s", line) for line in lines)
    assert any(line.startswith("640x640: compiled and loaded in") for line in lines)
    assert "the last compile took" in next(line for line in lines if line.startswith("640x640"))
    states = {b["name"]: b for b in backends.describe(manifest)["buckets"]}
    assert states["384x640"]["coreml_cache"] == states["640x640"]["coreml_cache"] == "in user cache"
    assert standin.compiles(mac.events) == 2
    lines.clear()
    backends.warmup(manifest, buckets, progress=lines.append)
    assert "384x640: CoreML entry in the user cache; loading it" in lines


def test_warmup_raises_after_reporting_a_failed_compile_and_retries_despite_back_off(manifest, mac):
    from retinaface_coreml.packaged.compiler import CompileError

    mac.use(fail="stand-in: out of memory")
    lines: list[str] = []
    with pytest.raises(CompileError, match="out of memory"):
        backends.warmup(manifest, [manifest.model.bucket("640x384")], progress=lines.append)
    assert "the CPU backend will be used" in lines[-1]
    mac.use()
    lines.clear()
    backends.warmup(manifest, [manifest.model.bucket("640x384")], progress=lines.append)
    assert any("retrying after a failure" in line for line in lines)
    assert lines[-1].startswith("640x384: compiled and loaded in")
    assert standin.compiles(mac.events) == 2


# --- the real CoreML EP (macOS) -------------------------------------------------------------


@pytest.fixture
def real_cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.setattr(backends, "POLL_SECONDS", 0.0)
    return tmp_path / "cache"


def real_layout(manifest, root: Path) -> CacheLayout:
    host = coreml.detect_host()
    return CacheLayout(
        root=root,
        ort_version=host.ort_version,
        macos_major=host.macos_major,
        digest=coreml.options_digest(backends.recipe_options(manifest.model)),
    )


@pytest.mark.coreml
@needs_coreml
def test_coreml_first_launch_serves_cpu_then_loads_coreml(manifest, real_cache, package_models):
    photo = load_photo(PHOTO)
    on_cpu = FaceDetector(backend="cpu", models_dir=package_models).detect(photo)
    detector = FaceDetector(models_dir=package_models)
    detector.detect(photo)
    runner = detector._runners["384x640"]
    assert isinstance(runner, backends.PendingRunner)  # open_runner did not wait for the compile
    settle(runner, photo_tensor(manifest, manifest.model.bucket("384x640")))
    faces = detector.detect(photo)
    assert detector.backend == "coreml"
    # CoreML may compute in float16: the same faces, not the same bits.
    assert len(faces) == len(on_cpu)
    assert all(iou(a.box, b.box) > 0.9 for a, b in zip(faces, on_cpu, strict=True))


@pytest.mark.coreml
@needs_coreml
def test_coreml_second_open_is_a_cache_hit_that_changes_nothing(manifest, real_cache):
    bucket = manifest.model.bucket("640x640")
    settle(backends.open_runner(manifest, bucket), photo_tensor(manifest, bucket))
    entry = real_layout(manifest, real_cache).entry(bucket.coreml_cache_key)
    before = cache.hash_files(entry)
    runner = backends.open_runner(manifest, bucket)
    assert runner.backend == "coreml" and not isinstance(runner, backends.PendingRunner)
    assert cache.hash_files(entry) == before and cache.check_entry(entry) is None


@pytest.mark.coreml
@needs_coreml
def test_coreml_shipped_cache_of_this_wheel_is_used_at_once(manifest, real_cache):
    record = (manifest.model.raw.get("coreml_cache") or [{}])[0]
    host = coreml.detect_host()
    if record.get("ort_version") != host.ort_version or int(record.get("macos_major", 99)) > int(
        host.macos_major
    ):
        pytest.skip(
            f"this build ships no entry for ORT {host.ort_version} / macOS {host.macos_major}"
        )
    runner = backends.open_runner(manifest, manifest.model.bucket("480x640"))
    assert runner.backend == "coreml" and not isinstance(runner, backends.PendingRunner)
