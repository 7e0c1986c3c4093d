"""cache.py: the directory scheme, entry validity, shipped entries and per-bucket states."""

from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePosixPath

import pytest

from retinaface_coreml.artifacts import load_manifest, sha256_file
from retinaface_coreml.errors import ArtifactError
from retinaface_coreml.packaged import cache
from retinaface_coreml.packaged.cache import CacheLayout

KEY = "retinaface384x640fe7bfabc9a8aef33888a382807e59ab921ff0ca1"


@pytest.fixture
def layout(tmp_path: Path) -> CacheLayout:
    return CacheLayout(
        root=tmp_path / "cache", ort_version="1.32.0", macos_major="14", digest="5c0f1b7a9e21"
    )


def make_entry(folder: Path, *, record: bool = True) -> Path:
    """An entry in ORT's layout (spec §5.3) with small real files."""
    files = {
        "model.txt": b"",
        "0_static_mlprogram/model/Manifest.json": b'{"fileFormatVersion": "1.0.0"}',
        "0_static_mlprogram/model/Data/com.microsoft.OnnxRuntime/model.mlmodel": b"\x08\x08" * 500,
    }
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    if record:
        cache.record_entry(folder, key=folder.name)
    return folder


def package_with_entry(package_models: Path, dest: Path, relative: str) -> Path:
    """A copy of the built package models with a shipped entry under ``coreml/<relative>/``."""
    shutil.copytree(package_models, dest, ignore=shutil.ignore_patterns("coreml"))
    entry = make_entry(dest / "coreml" / relative / KEY, record=False)
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["files"] = {k: v for k, v in manifest["files"].items() if not k.startswith("coreml/")}
    for path in sorted(p for p in entry.rglob("*") if p.is_file()):
        manifest["files"][path.relative_to(dest).as_posix()] = sha256_file(path)
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def test_root_is_the_env_override_or_the_platform_user_cache(tmp_path):
    assert cache.cache_root({cache.ENV_VAR: str(tmp_path)}) == tmp_path
    default = cache.cache_root({})
    assert default.name == "retinaface-coreml" and default.is_absolute()


def test_layout_encodes_ort_version_macos_major_and_options(layout, tmp_path):
    assert layout.dir == tmp_path / "cache" / "1.32.0" / "14" / "5c0f1b7a9e21"
    assert layout.entry(KEY) == layout.dir / KEY
    assert layout.lock_path(KEY).parent == layout.dir  # a sibling, never inside the entry


def test_a_recorded_entry_is_valid(layout):
    entry = make_entry(layout.entry(KEY))
    assert cache.check_entry(entry) is None
    record = json.loads((entry / cache.ENTRY_RECORD).read_text())
    assert record["key"] == KEY and "model.txt" in record["files"]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("delete entry.json", "partial entry"),
        ("delete a file", "is missing"),
        ("change a file", "has sha256"),
        ("garble entry.json", "unreadable"),
    ],
)
def test_partial_or_corrupt_entries_are_invalid(layout, damage, reason):
    entry = make_entry(layout.entry(KEY))
    model = entry / "0_static_mlprogram/model/Data/com.microsoft.OnnxRuntime/model.mlmodel"
    if damage == "delete entry.json":
        (entry / cache.ENTRY_RECORD).unlink()
    elif damage == "delete a file":
        model.unlink()
    elif damage == "change a file":
        model.write_bytes(model.read_bytes()[:-1] + b"\x00")
    else:
        (entry / cache.ENTRY_RECORD).write_text("{")
    assert reason in cache.check_entry(entry)


def test_no_entry_says_so(layout):
    assert cache.check_entry(layout.entry(KEY)) == "no entry"


def test_probe_writable_accepts_a_directory_and_refuses_a_path_under_a_file(tmp_path):
    assert cache.probe_writable(tmp_path / "a" / "b") is None
    (tmp_path / "file").write_text("not a directory")
    # Works as root too: no permission bit can make a regular file a directory.
    assert cache.probe_writable(tmp_path / "file" / "cache") is not None


def test_last_compile_seconds_round_trip(layout):
    assert cache.read_last_compile(layout.root) is None
    layout.root.mkdir(parents=True)
    cache.write_last_compile(layout.root, 41.25, key=KEY)
    assert cache.read_last_compile(layout.root) == 41.25


def test_shipped_entries_are_found_and_matched_by_the_whole_layout(
    layout, package_models, tmp_path
):
    root = package_with_entry(package_models, tmp_path / "pkg", "1.32.0/14/5c0f1b7a9e21")
    manifest = load_manifest(root)
    shipped = cache.shipped_entries(manifest, KEY)
    assert [e.dir for e in shipped] == [f"coreml/1.32.0/14/5c0f1b7a9e21/{KEY}"]
    assert cache.matching_shipped(layout, shipped) is shipped[0]
    # The ORT version and options must be the same; the macOS at or above the build's.
    fields = {"ort_version": "1.32.0", "macos_major": "14", "digest": "5c0f1b7a9e21"}
    for newer in ("15", "26"):
        later = CacheLayout(root=layout.root, **{**fields, "macos_major": newer})
        assert cache.matching_shipped(later, shipped) is shipped[0]
    for other in ("1.31.0", "13", "000000000000"):
        key = {"1.31.0": "ort_version", "13": "macos_major"}.get(other, "digest")
        changed = CacheLayout(root=layout.root, **{**fields, key: other})
        assert cache.matching_shipped(changed, shipped) is None


def test_copy_shipped_checks_every_file_against_the_manifest(package_models, tmp_path):
    root = package_with_entry(package_models, tmp_path / "pkg", "1.32.0/14/5c0f1b7a9e21")
    manifest = load_manifest(root)
    (shipped,) = cache.shipped_entries(manifest, KEY)
    cache.copy_shipped(manifest, shipped, tmp_path / "copy")
    assert cache.hash_files(tmp_path / "copy") == cache.hash_files(root / shipped.dir)
    (root / shipped.dir / "model.txt").write_text("tampered")
    with pytest.raises(ArtifactError, match=r"model\.txt"):
        cache.copy_shipped(manifest, shipped, tmp_path / "copy2")


def test_states_in_user_cache_shipped_failed_stale_missing(layout, package_models, tmp_path):
    root = package_with_entry(package_models, tmp_path / "pkg", "1.31.0/14/5c0f1b7a9e21")
    stale_shipped = cache.shipped_entries(load_manifest(root), KEY)
    assert cache.bucket_state(layout, KEY, []).state == cache.MISSING
    state = cache.bucket_state(layout, KEY, stale_shipped)
    assert state.state == cache.STALE and "shipped 1.31.0/14/5c0f1b7a9e21" in state.detail
    assert f"(other onnxruntime 1.31.0 (here {layout.ort_version}))" in state.detail
    layout.dir.mkdir(parents=True)
    cache.write_failure(layout, KEY, "RuntimeError: stand-in")
    assert cache.bucket_state(layout, KEY, stale_shipped).state == cache.FAILED
    root = package_with_entry(package_models, tmp_path / "pkg2", "1.32.0/14/5c0f1b7a9e21")
    matching = cache.shipped_entries(load_manifest(root), KEY)
    assert cache.bucket_state(layout, KEY, matching).state == cache.SHIPPED
    make_entry(layout.entry(KEY))
    assert cache.bucket_state(layout, KEY, matching).state == cache.IN_USER_CACHE


def test_info_says_why_an_entry_elsewhere_does_not_serve_here(layout):
    why = {
        "1.31.0/14/" + layout.digest: f"other onnxruntime 1.31.0 (here {layout.ort_version})",
        f"{layout.ort_version}/14/000000000000": (
            f"other CoreML options 000000000000 (here {layout.digest})"
        ),
        f"{layout.ort_version}/15/{layout.digest}": "newer macOS major 15 (here 14)",
        f"{layout.ort_version}/9/{layout.digest}": "other macOS major 9 (here 14)",
    }
    for rel, reason in why.items():
        assert cache.mismatch(layout, PurePosixPath(rel)) == reason


def test_an_entry_of_another_ort_version_in_the_user_cache_is_stale(layout):
    other = CacheLayout(
        root=layout.root, ort_version="1.31.0", macos_major="14", digest=layout.digest
    )
    make_entry(other.entry(KEY))
    state = cache.bucket_state(layout, KEY, [])
    assert state.state == cache.STALE and "user cache 1.31.0/14/5c0f1b7a9e21" in state.detail


def test_a_corrupt_entry_is_reported_as_missing_with_the_reason(layout):
    entry = make_entry(layout.entry(KEY))
    (entry / cache.ENTRY_RECORD).unlink()
    state = cache.bucket_state(layout, KEY, [])
    assert state.state == cache.MISSING and "partial or corrupt" in state.detail


def test_a_failure_blocks_retries_for_a_day_on_the_same_ort_only():
    failure = cache.Failure(error="RuntimeError: boom", at=1_000_000.0, ort_version="1.32.0")
    assert failure.blocks("1.32.0", 1_000_000.0 + 3600)
    assert not failure.blocks("1.32.0", 1_000_000.0 + cache.RETRY_AFTER + 1)
    assert not failure.blocks("1.31.1", 1_000_000.0 + 3600)
    assert "not retried for 23 h" in failure.describe("1.32.0", 1_000_000.0 + 3600)
    assert "retried on next use" in failure.describe("1.31.1", 1_000_000.0 + 3600)


def test_quarantine_moves_the_entry_where_no_lookup_sees_it(layout):
    entry = layout.entry(KEY)
    entry.mkdir(parents=True)
    (entry / "model.txt").write_text("x")
    moved = cache.quarantine(layout, KEY)
    assert moved == layout.dir / f".bad-{KEY}" and (moved / "model.txt").read_text() == "x"
    assert not entry.exists() and cache.quarantine(layout, KEY) is None
