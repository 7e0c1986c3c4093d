"""The hash memory: a file is hashed once per version across processes, a changed one never
passes for what it was, and a broken or unwritable memory only means hashing again.

Counted by ``hash_memory.hash_count`` (files hashed in full), read in each process itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from retinaface_coreml import hash_memory
from retinaface_coreml.artifacts import load_manifest
from retinaface_coreml.errors import ArtifactError
from retinaface_coreml.user_cache import ENV_VAR
from tests.conftest import ROOT

CHILD = """
import json, sys
import numpy as np
import onnxruntime
import retinaface_coreml
from retinaface_coreml import hash_memory
hash_memory.MIN_BYTES = 0  # the generated models are KBs; the memory keeps files of 8 MiB up
retinaface_coreml.install()
session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
out = session.run(None, {"x": np.ones((1, 3, 16, 16), np.float32)})[0]
served = session.last_served.bucket if session.packaged_model else None
print(json.dumps({"packaged": session.packaged_model, "served": served,
                  "hashed": hash_memory.hash_count, "out": out.ravel()[:8].tolist()}))
"""


def wait_settled(*paths: Path) -> None:
    """Sleep until every file's last change is ``SETTLE_NS`` old (only then is it remembered)."""
    newest = max(max(p.stat().st_mtime_ns, p.stat().st_ctime_ns) for p in paths)
    remaining = (newest + hash_memory.SETTLE_NS - time.time_ns()) / 1e9
    if remaining > 0:
        time.sleep(remaining + 0.05)


def child(model: Path, cache_dir: Path) -> dict:
    """A fresh process: ``install()``, a session on ``model``, one run; what it hashed."""
    env = {
        **os.environ,
        ENV_VAR: str(cache_dir),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(model)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def remembered(cache_dir: Path) -> dict[str, str]:
    return json.loads((cache_dir / hash_memory.MEMORY_NAME).read_text())["entries"]


@pytest.fixture
def memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache root for this process's memory (nothing remembered in-process either)."""
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.setattr(hash_memory, "_known", {})
    monkeypatch.setattr(hash_memory, "MIN_BYTES", 0)
    return tmp_path / "cache"


@pytest.fixture
def convnet(generated_sources: Path, tmp_path: Path) -> Path:
    """A copy of a packaged source (the generated ``convnet``), settled."""
    copy = tmp_path / "convnet.onnx"
    shutil.copyfile(generated_sources / "convnet.onnx", copy)
    return copy


def test_a_second_process_hashes_neither_the_source_nor_the_bucket(
    convnet, package_models, tmp_path
):
    bucket = package_models / "convnet" / "b1_16x16.onnx"
    wait_settled(convnet, bucket)
    cache_dir = tmp_path / "cache"
    first = child(convnet, cache_dir)
    assert (first["packaged"], first["served"], first["hashed"]) == ("convnet", "b1_16x16", 2)
    keys = remembered(cache_dir)
    assert keys[hash_memory.FileVersion.of(str(convnet), convnet.stat()).key] == (
        hashlib.sha256(convnet.read_bytes()).hexdigest()
    )
    assert any(key.endswith(str(bucket.resolve())) for key in keys)
    second = child(convnet, cache_dir)
    assert (second["packaged"], second["served"], second["hashed"]) == ("convnet", "b1_16x16", 0)
    assert second["out"] == first["out"]


def test_a_file_rewritten_in_place_same_size_same_mtime_is_hashed_again_and_not_packaged(
    convnet, tmp_path
):
    import onnx
    from onnx import numpy_helper

    wait_settled(convnet)
    cache_dir = tmp_path / "cache"
    assert child(convnet, cache_dir)["packaged"] == "convnet"
    model = onnx.load(str(convnet))
    weight = numpy_helper.to_array(model.graph.initializer[0]).copy()
    weight[0, 0, 0, 0] += 1.0
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(weight, "w"))
    changed = model.SerializeToString()
    before = convnet.stat()
    assert len(changed) == before.st_size
    with convnet.open("r+b") as handle:  # the same inode, the same size
        handle.write(changed)
    os.utime(convnet, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = convnet.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    again = child(convnet, cache_dir)
    assert (again["packaged"], again["hashed"]) == (None, 1)
    import onnxruntime

    plain = onnxruntime.InferenceSession(str(convnet), providers=["CPUExecutionProvider"])
    want = plain.run(None, {"x": np.ones((1, 3, 16, 16), np.float32)})[0].ravel()[:8]
    np.testing.assert_allclose(again["out"], want, rtol=1e-6)


def test_an_installed_file_flipped_in_place_is_refused_although_it_was_remembered(
    package_models, tmp_path, memory
):
    copy = tmp_path / "models"
    shutil.copytree(package_models, copy)
    target = copy / "convnet" / "b1_16x16.onnx"
    wait_settled(target)
    manifest = load_manifest(copy)
    before = hash_memory.hash_count
    for _ in range(2):
        manifest.read_verified("convnet/b1_16x16.onnx")
    assert hash_memory.hash_count == before + 1
    stat = target.stat()
    with target.open("r+b") as handle:
        handle.seek(stat.st_size // 2)
        middle = handle.read(8)
        handle.seek(stat.st_size // 2)
        handle.write(bytes(b ^ 0xFF for b in middle))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(ArtifactError, match="does not match the manifest"):
        manifest.read_verified("convnet/b1_16x16.onnx")
    assert hash_memory.hash_count == before + 2


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"\x00" * 64,
        b'{"format": 1, "entries": []}',
        b'{"format": 1, "entries": {"k": "not a digest"}}',
        b'["format", 1]',
        b'{"format": 1, "entries": {}}' + b" " * (hash_memory.MAX_BYTES + 1),
    ],
    ids=["text", "zeros", "list", "bad-digest", "not-a-record", "too-large"],
)
def test_a_corrupt_memory_is_ignored_and_replaced(convnet, memory, content):
    wait_settled(convnet)
    memory.mkdir(parents=True)
    (memory / hash_memory.MEMORY_NAME).write_bytes(content)
    before = hash_memory.hash_count
    assert hash_memory.file_sha256(convnet) == hashlib.sha256(convnet.read_bytes()).hexdigest()
    assert hash_memory.hash_count == before + 1
    assert list(remembered(memory)) == [
        hash_memory.FileVersion.of(str(convnet), convnet.stat()).key
    ]


def _unwritable(kind: str, tmp_path: Path) -> Path:
    if kind == "not a directory":
        (tmp_path / "file").write_text("")
        return tmp_path / "file" / "cache"
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):  # root ignores the mode bits; /proc refuses root too
        if not Path("/proc/self").is_dir():
            pytest.skip("running as root, and no read-only filesystem to use instead")
        return Path("/proc/self/retinaface-coreml-cache")
    return folder


@pytest.mark.parametrize("kind", ["read-only", "not a directory"])
def test_an_unwritable_cache_dir_only_means_hashing_again(convnet, tmp_path, monkeypatch, kind):
    cache_dir = _unwritable(kind, tmp_path)
    monkeypatch.setenv(ENV_VAR, str(cache_dir))
    monkeypatch.setattr(hash_memory, "_known", {})
    monkeypatch.setattr(hash_memory, "MIN_BYTES", 0)
    wait_settled(convnet)
    before = hash_memory.hash_count
    digest = hashlib.sha256(convnet.read_bytes()).hexdigest()
    assert [hash_memory.file_sha256(convnet) for _ in range(2)] == [digest, digest]
    assert hash_memory.hash_count == before + 1  # this process remembers
    assert not (cache_dir / hash_memory.MEMORY_NAME).exists()
    for _ in range(2):  # each new process hashes again, and serves the model
        result = child(convnet, cache_dir)
        assert (result["packaged"], result["hashed"]) == ("convnet", 2)


def test_a_file_changed_a_moment_ago_is_hashed_but_not_remembered(convnet, memory):
    hash_memory.file_sha256(convnet)  # copied just now: a write in the same tick could follow
    assert not (memory / hash_memory.MEMORY_NAME).exists()
    wait_settled(convnet)
    before = hash_memory.hash_count
    hash_memory.file_sha256(convnet)
    hash_memory.file_sha256(convnet)
    assert hash_memory.hash_count == before + 1
    assert len(remembered(memory)) == 1


def test_the_memory_keeps_the_newest_versions_only(tmp_path, memory, monkeypatch):
    monkeypatch.setattr(hash_memory, "MAX_ENTRIES", 3)
    files = [tmp_path / f"f{i}.bin" for i in range(5)]
    for i, path in enumerate(files):
        path.write_bytes(bytes([i]) * 100)
    wait_settled(*files)
    for path in files:
        hash_memory.file_sha256(path)
    keys = list(remembered(memory))
    assert [key.rsplit("/", 1)[-1] for key in keys] == ["f2.bin", "f3.bin", "f4.bin"]


def test_a_remembered_installed_file_is_loaded_from_the_open_file_unread(
    package_models, tmp_path, memory
):
    copy = tmp_path / "models"
    shutil.copytree(package_models, copy)
    relpath = "convnet/b1_16x16.onnx"
    wait_settled(copy / relpath)
    manifest = load_manifest(copy)
    given: list[tuple[str, bytes]] = []

    def record(model: str | bytes) -> str:
        if isinstance(model, str):  # a path to the open file: read it while it is open
            given.append(("path", Path(model).read_bytes()))
        else:
            given.append(("bytes", model))
        return "loaded"

    data = (copy / relpath).read_bytes()
    assert manifest.load_verified(relpath, record) == "loaded"
    assert given == [("bytes", data)]  # not remembered yet: read and hashed
    before = hash_memory.hash_count
    assert manifest.load_verified(relpath, record) == "loaded"
    assert given[-1] == ("path", data)
    assert hash_memory.hash_count == before

    def write_while_loading(model: str | bytes) -> str:
        if isinstance(model, str):
            with open(copy / relpath, "r+b") as handle:
                handle.write(b"\xff")
        return "loaded"

    with pytest.raises(ArtifactError, match="does not match the manifest"):
        manifest.load_verified(relpath, write_while_loading)


def test_a_small_file_is_remembered_in_this_process_only(convnet, memory, monkeypatch):
    monkeypatch.setattr(hash_memory, "MIN_BYTES", convnet.stat().st_size + 1)
    wait_settled(convnet)
    before = hash_memory.hash_count
    for _ in range(2):
        hash_memory.file_sha256(convnet)
    assert hash_memory.hash_count == before + 1
    assert not memory.exists()  # not even looked for: hashing it is cheaper


def test_a_bucket_is_hashed_while_it_loads(package_models, monkeypatch):
    """The hash runs on another thread while ``load`` builds from the same bytes: here the hash
    waits for the load to start, which it could not if the two ran one after the other."""
    manifest = load_manifest(package_models)
    relpath = "convnet/b1_16x16.onnx"
    loading = threading.Event()
    real_sha256 = hashlib.sha256

    def sha256_once_loading(data: bytes = b""):
        assert loading.wait(timeout=10), "the hash did not overlap the load"
        return real_sha256(data)

    monkeypatch.setattr(hashlib, "sha256", sha256_once_loading)
    monkeypatch.setattr(hash_memory, "_known", {})  # not recalled in this process either

    def load(data: bytes) -> int:
        loading.set()
        return len(data)

    assert manifest.load_checked(relpath, load) == (package_models / relpath).stat().st_size


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_a_damaged_bucket_is_named_not_loaded(package_models, tmp_path, damage):
    """What onnxruntime built from damaged bytes is dropped; a loader's own error on them (a
    truncated protobuf) gives way to the one line naming the file and the fix."""
    copy = tmp_path / "models"
    shutil.copytree(package_models, copy)
    target = copy / "convnet" / "b1_16x16.onnx"
    data = bytearray(target.read_bytes())
    if damage == "flipped":
        middle = len(data) // 2
        data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])  # weights
    else:
        data = data[: len(data) // 3]
    target.write_bytes(bytes(data))
    built = []

    def session(model: bytes) -> onnxruntime.InferenceSession:
        built.append(onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]))
        return built[-1]

    with pytest.raises(ArtifactError, match=f"{target}: sha256 .* does not match the manifest"):
        load_manifest(copy).load_checked("convnet/b1_16x16.onnx", session)
    assert len(built) == (1 if damage == "flipped" else 0)
