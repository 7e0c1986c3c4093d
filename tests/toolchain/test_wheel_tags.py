"""wheel_tags.retag_for_cache: the platform tag a wheel with a CoreML cache must carry."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from retinaface_coreml_toolchain.errors import PackageError
from retinaface_coreml_toolchain.wheel_tags import (
    MANIFEST_MEMBER,
    PIN_ENV,
    platform_tag,
    retag_for_cache,
)

DIST_INFO = "retinaface_coreml-0.1.0.dist-info"
WHEEL = (
    "Wheel-Version: 1.0\nGenerator: hatchling 1.33.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
)
METADATA = (
    "Metadata-Version: 2.4\nName: retinaface-coreml\nVersion: 0.1.0\n"
    "Requires-Dist: numpy>=1.24\nRequires-Dist: onnxruntime>=1.21\n"
    "Requires-Dist: onnxruntime-extensions>=0.1\n"
    "Requires-Dist: onnxruntime==1.32.0; extra == 'build'\n\n# retinaface-coreml\n"
)
CACHE = {"macos_major": "14", "machine": "arm64", "ort_version": "1.32.0"}
ENTRY = "coreml/{ort}/14/5c0f1b7a9e21/retinaface640x640ab12/model.txt"
FILES = {ENTRY.format(ort="1.32.0"): "0" * 64, "640x640.onnx": "1" * 64}
PINNED = {PIN_ENV: "1"}


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def schema_2(precompile: dict, files: dict[str, str]) -> dict:
    """A manifest (schema 2) whose one model shipped the cache ``precompile`` recorded."""
    shipped = [{"ort_version": precompile.get("ort_version")}] if precompile else []
    model = {"coreml_cache": shipped, "precompile": precompile}
    return {"schema_version": 2, "models": {"retinaface": model}, "files": files}


def make_wheel(folder: Path, coreml_cache: dict, files: dict[str, str] = FILES) -> Path:
    """A small wheel laid out as hatchling writes it (RECORD last, fixed timestamps)."""
    members = {
        "retinaface_coreml/__init__.py": b"",
        MANIFEST_MEMBER: json.dumps(schema_2(coreml_cache, files)).encode(),
        f"{DIST_INFO}/WHEEL": WHEEL.encode(),
        f"{DIST_INFO}/METADATA": METADATA.encode(),
    }
    record = "\n".join([*(record_line(n, d) for n, d in members.items()), f"{DIST_INFO}/RECORD,,"])
    members[f"{DIST_INFO}/RECORD"] = (record + "\n").encode()
    path = folder / "retinaface_coreml-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in members.items():
            wheel.writestr(zipfile.ZipInfo(name, (2023, 11, 14, 22, 13, 20)), data)
    return path


def test_platform_tag_names_the_macos_major_and_architecture() -> None:
    assert platform_tag("14", "arm64") == "macosx_14_0_arm64"
    assert platform_tag("13", "x86_64") == "macosx_13_0_x86_64"
    with pytest.raises(PackageError):
        platform_tag("", "arm64")


@pytest.mark.parametrize("env", [{}, PINNED], ids=["admitted-range", "pinned"])
def test_retag_rewrites_name_wheel_and_record_and_nothing_else(tmp_path: Path, env) -> None:
    original = make_wheel(tmp_path, {**CACHE, "entries": {"x": {}}})
    with zipfile.ZipFile(original) as wheel:
        before = {i.filename: (i.date_time, wheel.read(i)) for i in wheel.infolist()}
        order = wheel.namelist()
    retagged = retag_for_cache(original, env=env)
    assert retagged.name == "retinaface_coreml-0.1.0-py3-none-macosx_14_0_arm64.whl"
    assert not original.exists()
    with zipfile.ZipFile(retagged) as wheel:
        after = {i.filename: (i.date_time, wheel.read(i)) for i in wheel.infolist()}
        assert wheel.namelist() == order
    wheel_text = after[f"{DIST_INFO}/WHEEL"][1].decode()
    assert "Tag: py3-none-macosx_14_0_arm64" in wheel_text and "py3-none-any" not in wheel_text
    changed = {name for name in before if before[name] != after[name]}
    metadata = after[f"{DIST_INFO}/METADATA"][1].decode()
    if env:
        # Opted in: pip may not pick another onnxruntime than the entries' own.
        assert changed == {f"{DIST_INFO}/WHEEL", f"{DIST_INFO}/METADATA", f"{DIST_INFO}/RECORD"}
        assert metadata == METADATA.replace("onnxruntime>=1.21", "onnxruntime==1.32.0")
    else:
        # By default the wheel installs beside any ORT the runtime admits: a mismatch is a miss.
        assert changed == {f"{DIST_INFO}/WHEEL", f"{DIST_INFO}/RECORD"}
        assert metadata == METADATA
    for line in after[f"{DIST_INFO}/RECORD"][1].decode().splitlines():
        name, digest, _ = line.split(",")
        if digest:  # every hash in RECORD matches the member as now stored
            assert line == record_line(name, after[name][1])


def test_an_exact_pin_needs_entries_of_one_release(tmp_path: Path) -> None:
    files = {ENTRY.format(ort=ort): "0" * 64 for ort in ("1.32.0", "1.23.2")}
    original = make_wheel(tmp_path, {**CACHE, "entries": {"x": {}}}, files)
    with pytest.raises(PackageError, match=r"entries for 1\.23\.2, 1\.32\.0; build it without"):
        retag_for_cache(original, env=PINNED)
    assert list(tmp_path.iterdir()) == []  # no untagged wheel with entries is left behind
    retagged = retag_for_cache(make_wheel(tmp_path, {**CACHE, "entries": {"x": {}}}, files), env={})
    with zipfile.ZipFile(retagged) as wheel:
        assert wheel.read(f"{DIST_INFO}/METADATA").decode() == METADATA


def test_retag_is_byte_stable(tmp_path: Path) -> None:
    cache = CACHE
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = retag_for_cache(make_wheel(tmp_path / "a", cache))
    second = retag_for_cache(make_wheel(tmp_path / "b", cache))
    assert first.read_bytes() == second.read_bytes()


def test_a_wheel_without_a_cache_record_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="no CoreML cache record"):
        retag_for_cache(make_wheel(tmp_path, {}))
