"""compiler.py in real processes, with the stand-in compiler and the real bucket models."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from pathlib import Path

import filelock
import numpy as np
import pytest

from retinaface_coreml.artifacts import load_manifest
from retinaface_coreml.packaged import cache, compiler
from retinaface_coreml.packaged.cache import CacheLayout
from tests.runtime import standin
from tests.runtime.standin import StandIn


@pytest.fixture
def bucket(package_models: Path):
    manifest = load_manifest(package_models)
    info = manifest.detector_model().bucket("384x640")
    return info, manifest.read_verified(info.file)


@pytest.fixture
def layout(tmp_path: Path) -> CacheLayout:
    return CacheLayout(
        root=tmp_path / "cache", ort_version="1.32.0", macos_major="14", digest="5c0f1b7a9e21"
    )


def make_standin(bucket, tmp_path: Path, **kwargs) -> StandIn:
    info, model = bucket
    return StandIn(key=info.coreml_cache_key, model=model, events=tmp_path / "events", **kwargs)


def leftovers(layout: CacheLayout) -> list[Path]:
    return sorted(layout.root.glob(".build-*"))


class _Seen(logging.Handler):
    """Sets ``event`` when a record containing ``text`` is logged (ordering without sleeps)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


def test_publish_once_builds_then_finds_it(layout, bucket, tmp_path):
    key = bucket[0].coreml_cache_key
    fake = make_standin(bucket, tmp_path)
    first = compiler.publish_once(layout, key, fake)
    second = compiler.publish_once(layout, key, fake)
    assert (first.built, second.built) == (True, False)
    assert cache.check_entry(first.entry) is None
    assert standin.compiles(tmp_path / "events") == 1
    assert leftovers(layout) == []
    mode = (first.entry / standin.MODEL_FILE).stat().st_mode & 0o777
    assert mode == 0o644 and (first.entry.stat().st_mode & 0o777) == 0o755


def test_failing_build_removes_its_temp_dir_and_publishes_nothing(layout, bucket, tmp_path):
    key = bucket[0].coreml_cache_key
    fake = make_standin(bucket, tmp_path, fail="stand-in compiler crashed")
    with pytest.raises(RuntimeError, match="stand-in compiler crashed"):
        compiler.publish_once(layout, key, fake)
    assert not layout.entry(key).exists()
    assert leftovers(layout) == []
    # The lock was released: another object takes it at once.
    filelock.FileLock(layout.lock_path(key)).acquire(timeout=0)


def test_a_build_that_writes_no_entry_is_an_error(layout, bucket):
    with pytest.raises(compiler.CompileError, match="wrote no cache entry"):
        compiler.publish_once(layout, bucket[0].coreml_cache_key, lambda tmp: None)
    assert leftovers(layout) == []


def test_an_interrupted_compile_s_temp_dir_is_removed_by_the_next(layout, bucket, tmp_path):
    key = bucket[0].coreml_cache_key
    orphan = layout.root / f".build-{key}-killed"
    (orphan / key).mkdir(parents=True)
    compiler.publish_once(layout, key, make_standin(bucket, tmp_path))
    assert not orphan.exists()


@pytest.mark.parametrize("damage", ["no entry.json", "truncated file"])
def test_a_partial_or_corrupt_entry_is_rebuilt_never_loaded(layout, bucket, tmp_path, damage):
    key = bucket[0].coreml_cache_key
    fake = make_standin(bucket, tmp_path)
    entry = compiler.publish_once(layout, key, fake).entry
    if damage == "no entry.json":
        (entry / cache.ENTRY_RECORD).unlink()
    else:
        model_file = entry / standin.MODEL_FILE
        model_file.write_bytes(model_file.read_bytes()[:1000])
    assert cache.check_entry(entry) is not None
    runner = compiler.compile_entry(layout, key, fake, label="384x640")
    assert standin.compiles(tmp_path / "events") == 2
    assert fake.calls == ["compiled", "compiled", "hit"]  # the damaged entry was never opened
    assert cache.check_entry(entry) is None
    assert runner.backend == standin.BACKEND


def test_waiting_for_the_lock_is_logged_then_finds_the_entry(layout, bucket, tmp_path):
    key = bucket[0].coreml_cache_key
    fake = make_standin(bucket, tmp_path)
    layout.dir.mkdir(parents=True)
    holder = filelock.FileLock(layout.lock_path(key))
    holder.acquire()
    seen = _Seen("another process is still compiling")
    logging.getLogger("retinaface_coreml.packaged.compiler").addHandler(seen)
    logging.getLogger("retinaface_coreml.packaged.compiler").setLevel(logging.INFO)
    outcome: list[compiler.Published] = []
    waiter = threading.Thread(
        target=lambda: outcome.append(compiler.publish_once(layout, key, fake))
    )
    try:
        waiter.start()
        assert seen.event.wait(60), "the waiting side never said it was waiting"
        # What the holder does meanwhile: publish the entry itself.
        tmp = layout.root / "holder"
        fake(tmp)
        cache.record_entry(tmp / key, key=key)
        (tmp / key).rename(layout.entry(key))
    finally:
        holder.release()
        waiter.join(60)
        logging.getLogger("retinaface_coreml.packaged.compiler").removeHandler(seen)
    assert outcome and outcome[0].built is False  # looked again under the lock: nothing to do
    assert standin.compiles(tmp_path / "events") == 1


def test_a_lock_held_too_long_gives_up_with_a_clear_error(layout, bucket, tmp_path):
    key = bucket[0].coreml_cache_key
    layout.dir.mkdir(parents=True)
    holder = filelock.FileLock(layout.lock_path(key))
    holder.acquire()
    try:
        with pytest.raises(compiler.CompileError, match="another process is still compiling"):
            compiler.publish_once(layout, key, make_standin(bucket, tmp_path), timeout=0.05)
    finally:
        holder.release()
    assert standin.compiles(tmp_path / "events") == 0


def test_compile_entry_records_time_and_clears_an_old_failure(layout, bucket, tmp_path):
    key = bucket[0].coreml_cache_key
    layout.dir.mkdir(parents=True)
    cache.write_failure(layout, key, "RuntimeError: earlier")
    compiler.compile_entry(layout, key, make_standin(bucket, tmp_path), label="384x640")
    assert cache.read_failure(layout, key) is None
    assert cache.read_last_compile(layout.root) is not None


def test_compile_entry_failure_is_logged_once_recorded_and_raised(layout, bucket, tmp_path, caplog):
    key = bucket[0].coreml_cache_key
    fake = make_standin(bucket, tmp_path, fail="stand-in: MLModel compile error")
    with pytest.raises(compiler.CompileError, match="MLModel compile error"):
        compiler.compile_entry(layout, key, fake, label="384x640")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "MLModel compile error" in warnings[0].getMessage()
    failure = cache.read_failure(layout, key)
    assert "MLModel compile error" in failure.error and failure.ort_version == "1.32.0"
    assert cache.read_last_compile(layout.root) is None


def test_an_entry_that_does_not_load_is_moved_aside_recorded_and_raised(layout, bucket, tmp_path):
    key = bucket[0].coreml_cache_key
    fake = make_standin(bucket, tmp_path)

    def unloadable(cache_dir):
        # Compiles into the private temp dir; the published entry, complete, fails to load.
        if cache_dir == layout.dir:
            raise RuntimeError("stand-in: Core ML cannot load this compiled model")
        return fake(cache_dir)

    with pytest.raises(compiler.CompileError, match="does not load"):
        compiler.compile_entry(layout, key, unloadable, label="384x640")
    assert not layout.entry(key).exists()
    assert (layout.dir / f"{cache.QUARANTINE_PREFIX}{key}").is_dir()
    assert "does not load" in cache.read_failure(layout, key).error
    # The next compile starts from nothing and publishes a good entry.
    compiler.compile_entry(layout, key, make_standin(bucket, tmp_path), label="384x640")
    assert cache.check_entry(layout.entry(key)) is None


def test_the_compiler_starts_no_thread(layout, bucket, tmp_path):
    key = bucket[0].coreml_cache_key
    compiler.compile_entry(layout, key, make_standin(bucket, tmp_path), label="384x640")
    assert threading.active_count() == 1


def test_six_processes_compile_once_and_never_see_a_half_written_entry(layout, bucket, tmp_path):
    """Six processes start together with no entry: one compile, one published entry for all.

    A watcher in this process looks at the final path the whole time: whenever it exists it
    must already be complete (publishing is one rename of a finished directory).
    """
    info, model = bucket
    key = info.coreml_cache_key
    model_path = tmp_path / "model.onnx"
    model_path.write_bytes(model)
    events = tmp_path / "events"
    entry = layout.entry(key)
    violations: list[str] = []
    looks = [0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if entry.exists():
                looks[0] += 1
                problem = cache.check_entry(entry)
                if problem is not None:
                    violations.append(problem)

    context = multiprocessing.get_context("spawn")
    start = context.Barrier(6)
    results = context.Queue()
    fields = {
        "root": str(layout.root),
        "ort_version": layout.ort_version,
        "macos_major": layout.macos_major,
        "digest": layout.digest,
    }
    watcher = threading.Thread(target=watch)
    watcher.start()
    children = [
        context.Process(
            target=standin.compile_in_child,
            args=(fields, key, str(model_path), str(events), start, results),
        )
        for _ in range(6)
    ]
    try:
        for child in children:
            child.start()
        outcomes = [results.get(timeout=300) for _ in children]
    finally:
        for child in children:
            child.join(60)
        stop.set()
        watcher.join()
    assert [o for o in outcomes if o[1].startswith("error")] == []
    assert standin.compiles(events) == 1
    assert len({o[0] for o in outcomes}) == 6
    assert {o[1] for o in outcomes} == {"hit"}  # every process ran on the published entry
    assert len({o[2] for o in outcomes}) == 1  # ... the same one
    assert violations == [] and looks[0] > 0
    assert cache.check_entry(entry) is None and leftovers(layout) == []
    hits = [line for line in standin.events(events) if line.startswith("hit ")]
    assert len(hits) == 6 and all(line.endswith(str(layout.dir)) for line in hits)


def test_stand_in_session_from_the_entry_runs_the_real_model(layout, bucket, tmp_path):
    key = bucket[0].coreml_cache_key
    runner = compiler.compile_entry(layout, key, make_standin(bucket, tmp_path), label="x")
    loc, conf, landmarks = runner.run({"input": np.zeros((1, 3, 384, 640), dtype=np.float32)})
    assert loc.shape == (1, 10080, 4) and conf.shape == (1, 10080, 2)
    assert landmarks.shape == (1, 10080, 10)
