"""A cold CoreML cache as a user meets it: the real CLI and detector, the real compile child.

The CoreML EP is the stand-in at the runtime's two seams (tests/runtime/standin.py), in every
process: its compile spends seconds inside real ``onnxruntime.InferenceSession`` calls, so a
compile left on a thread of the caller would hold the GIL (ORT 1.21-1.30) or abort the process
at exit (ORT 1.31+). ``make test-ort130`` runs this file under onnxruntime 1.30.0 too.

The time bounds here are not benchmarks: each one is a promise (a cold ``detect`` returns at
once, a frame is never held up by a compile) checked against a compile many times longer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import filelock
import onnxruntime
import pytest

from retinaface_coreml import coreml
from retinaface_coreml.artifacts import load_manifest
from retinaface_coreml.detector import FaceDetector
from retinaface_coreml.packaged import backends, cache
from retinaface_coreml.packaged.cache import CacheLayout
from tests.conftest import FACES_DIR, ROOT
from tests.runtime import standin
from tests.runtime.photos import load_photo

pytestmark = pytest.mark.skipif(
    sys.platform == "darwin", reason="the stand-in replaces a CoreML EP that is really there"
)

PHOTO = "faceapi_sample1.jpg"  # 1920x1280: bucket 384x640, three faces
BUCKET = "384x640"


@pytest.fixture
def cold(monkeypatch, tmp_path: Path, package_models: Path):
    """A macOS host with an empty user cache; returns (events file, the bucket's layout, key)."""
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.setattr(backends, "POLL_SECONDS", 0.0)
    events = tmp_path / "events"
    standin.activate(monkeypatch, events)
    manifest = load_manifest(package_models)
    layout = CacheLayout(
        root=tmp_path / "cache",
        ort_version=onnxruntime.__version__,
        macos_major="14",
        digest=coreml.options_digest(backends.recipe_options(manifest.detector_model())),
    )
    return events, layout, manifest.detector_model().bucket(BUCKET).coreml_cache_key


def detect(package_models: Path) -> tuple[subprocess.CompletedProcess, float, dict]:
    """``python -m retinaface_coreml detect --json`` on the photo: (result, seconds, record)."""
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "retinaface_coreml",
            "detect",
            "--json",
            "--models-dir",
            str(package_models),
            str(FACES_DIR / PHOTO),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([os.environ["PYTHONPATH"], str(ROOT)])},
        check=False,
    )
    seconds = time.monotonic() - started
    record = json.loads(done.stdout)[0] if done.returncode == 0 else {}
    return done, seconds, record


def wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {seconds:.0f} s waiting for {what}")
        time.sleep(0.05)


def compile_pids(events: Path) -> list[int]:
    return [int(line.split()[1]) for line in standin.events(events) if line.startswith("compile")]


def test_a_cold_detect_exits_at_once_and_the_compile_outlives_it(cold, monkeypatch, package_models):
    events, layout, key = cold
    standin.activate(monkeypatch, events, compile_seconds=8)
    done, seconds, record = detect(package_models)
    assert done.returncode == 0, done.stderr
    assert (record["backend"], len(record["faces"])) == ("cpu", 3)
    assert seconds < 5, f"a cold detect took {seconds:.1f} s: it waited for the compile"
    # The detect process is gone; its compile child is not, and publishes afterwards.
    assert not cache.entry_published(layout.entry(key))
    wait_for(lambda: cache.entry_published(layout.entry(key)), 120, "the published entry")
    log = layout.log_path(key)
    wait_for(lambda: f"compiled {BUCKET}" in log.read_text(), 60, "the child to finish")
    (child,) = compile_pids(events)
    assert child != os.getpid()
    assert not list(layout.root.glob(".build-*"))
    # The next launch runs on CoreML (the stand-in) at once, from that entry.
    done, seconds, record = detect(package_models)
    assert done.returncode == 0, done.stderr
    assert (record["backend"], len(record["faces"])) == ("coreml", 3)
    assert standin.compiles(events) == 1
    assert standin.events(events)[-1].split()[0] == "hit"


def test_killing_the_compile_child_leaves_the_cache_usable(cold, monkeypatch, package_models):
    events, layout, key = cold
    standin.activate(monkeypatch, events, compile_seconds=60)
    done, _, record = detect(package_models)
    assert done.returncode == 0 and record["backend"] == "cpu", done.stderr
    wait_for(lambda: compile_pids(events), 60, "the child to start compiling")
    (child,) = compile_pids(events)
    os.kill(child, signal.SIGKILL)
    lock = filelock.FileLock(layout.lock_path(key))
    wait_for(lambda: _acquirable(lock), 30, "the killed child's lock to be released")
    assert not layout.entry(key).exists()  # nothing half-written where ORT would look
    # The next launch retries: a new child compiles, clears the orphan and publishes.
    standin.activate(monkeypatch, events, compile_seconds=0.5)
    done, _, record = detect(package_models)
    assert done.returncode == 0 and record["backend"] == "cpu", done.stderr
    wait_for(lambda: cache.entry_published(layout.entry(key)), 120, "the published entry")
    wait_for(lambda: _acquirable(lock), 30, "the second child to finish")
    assert not list(layout.root.glob(".build-*"))
    assert cache.read_failure(layout, key) is None
    done, _, record = detect(package_models)
    assert (record["backend"], len(record["faces"])) == ("coreml", 3), done.stderr
    assert standin.compiles(events) == 2


def _acquirable(lock: filelock.FileLock) -> bool:
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return False
    lock.release()
    return True


def test_no_detect_call_waits_for_the_compile(cold, monkeypatch, package_models):
    """Every ``detect()`` during a 6 s compile returns within 1 s; then CoreML takes over."""
    events, _, _ = cold
    standin.activate(monkeypatch, events, compile_seconds=6)
    detector = FaceDetector(models_dir=package_models)
    photo = load_photo(PHOTO)
    durations: list[float] = []
    backends_seen: list[str | None] = []
    deadline = time.monotonic() + 120
    while detector.backend != "coreml" and time.monotonic() < deadline:
        started = time.monotonic()
        faces = detector.detect(photo)
        durations.append(time.monotonic() - started)
        backends_seen.append(detector.backend)
        assert len(faces) == 3
    assert detector.backend == "coreml", f"never swapped: {standin.events(events)}"
    assert max(durations) < 1.0, f"slowest detect() {max(durations):.2f} s"
    assert backends_seen.count("cpu") >= 5  # the compile really overlapped the calls
    assert standin.compiles(events) == 1


APP = """
import json, sys, time
import numpy as np
import retinaface_coreml

retinaface_coreml.install()


def load(path):  # app code: onnxruntime imported inside a function, after install()
    import onnxruntime

    return onnxruntime.InferenceSession(
        path, providers=["CoreMLExecutionProvider", "CPUExecutionProvider"]
    )


started = time.monotonic()
session = load(sys.argv[1])
x = np.ones((4, 3, 16, 16), np.float32)
out = session.run(None, {session.get_inputs()[0].name: x})[0]
print(json.dumps({"model": session.packaged_model, "bucket": session.last_served.bucket,
                  "backend": session.last_served.backend, "slices": session.last_served.slices,
                  "sum": float(out.sum()), "seconds": time.monotonic() - started}))
"""


def run_app(model: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", APP, str(model)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([os.environ["PYTHONPATH"], str(ROOT)])},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_packaged_conv_net_starts_cold_on_cpu_and_runs_on_coreml_at_the_next_launch(
    cold, monkeypatch, package_models, generated_sources
):
    """The same promise for a model that is not RetinaFace, through install() in app code."""
    events, layout, _ = cold
    standin.activate(monkeypatch, events, compile_seconds=8)
    model = generated_sources / "convnet.onnx"
    key = load_manifest(package_models).model("convnet").bucket("b2_16x16").coreml_cache_key
    started = time.monotonic()
    first = run_app(model)
    seconds = time.monotonic() - started
    assert (first["model"], first["bucket"], first["backend"]) == ("convnet", "b2_16x16", "cpu")
    assert first["slices"] == 2  # a batch of 4 in the batch-2 bucket
    assert seconds < 5, f"a cold launch took {seconds:.1f} s: it waited for the compile"
    assert not cache.entry_published(layout.entry(key))
    wait_for(lambda: cache.entry_published(layout.entry(key)), 120, "the published entry")
    (child,) = compile_pids(events)
    assert child != os.getpid()
    second = run_app(model)
    assert (second["bucket"], second["backend"]) == ("b2_16x16", "coreml")
    assert second["sum"] == pytest.approx(first["sum"], rel=1e-5)
    assert standin.compiles(events) == 1 and standin.events(events)[-1].split()[0] == "hit"


def test_the_compile_command_off_macos_is_one_line_and_exit_2(package_models):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "retinaface_coreml",
            "compile",
            "--model",
            "retinaface",
            "--bucket",
            BUCKET,
            "--models-dir",
            str(package_models),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: CoreML is unavailable here")
    assert len(done.stderr.splitlines()) == 1
