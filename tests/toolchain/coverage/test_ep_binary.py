"""ep_binary: builder classes, overrides and builder strings out of a binary-like blob."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from retinaface_coreml_toolchain.coverage.ep_binary import (
    BinaryError,
    arm64_slice,
    read_binary,
    read_wheel,
)
from tests.toolchain.coverage.ep_blobs import blob, fat, write_wheel


def test_reads_builders_overrides_and_the_builder_strings_only() -> None:
    image = blob(
        builders=["Pad", "GatherND", "BatchNormalization"],
        mlprogram=["GatherND"],
        trivial=["Pad"],
        messages=["Pad requires input to have a shape.", " is not supported", "a b"],
    )
    facts = read_binary(image)
    assert facts.builders == {"Pad", "GatherND", "BatchNormalization"}
    assert facts.mlprogram == {"GatherND"}  # BaseOpBuilder's override is not a builder
    assert facts.trivial == {"Pad"}  # nor is IOpBuilder's
    # Only strings with a space between the first builder path and the next other source path;
    # no op names, paths or function signatures.
    # Two of them sit after an inlined header's path, still inside the region.
    assert facts.messages == {"Pad requires input to have a shape.", " is not supported", "a b"}


def test_a_universal_binary_is_read_from_its_arm64_slice() -> None:
    arm = blob(builders=["Pad"], messages=["arm64 message"])
    intel = blob(builders=["Tile"], messages=["x86_64 message"])
    assert arm64_slice(fat(arm, intel)) == arm
    assert read_binary(fat(arm, intel)).messages == {"arm64 message"}


def test_a_universal_binary_without_arm64_is_refused() -> None:
    intel = blob(builders=["Tile"])
    image = fat(intel, intel).replace(b"\x01\x00\x00\x0c", b"\x01\x00\x00\x07")
    with pytest.raises(BinaryError, match="without an arm64 slice"):
        arm64_slice(image)


def test_a_binary_without_the_coreml_ep_is_refused() -> None:
    with pytest.raises(BinaryError, match="no CoreML op builders"):
        read_binary(b"\x7fELF" + b"\x00" * 100)
    no_strings = blob(builders=["Pad"]).replace(b"/builders/impl/", b"/elsewhere/xx/")
    with pytest.raises(BinaryError, match="no CoreML builder source paths"):
        read_binary(no_strings)


def test_read_wheel_opens_the_pybind_module(tmp_path: Path) -> None:
    wheel = write_wheel(
        tmp_path / "onnxruntime-1.0.0-cp312-cp312-macosx_14_0_arm64.whl", blob(builders=["Pad"])
    )
    assert read_wheel(wheel).builders == {"Pad"}


def test_read_wheel_refuses_a_zip_without_it_and_a_non_zip(tmp_path: Path) -> None:
    empty = tmp_path / "onnxruntime-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("onnxruntime/__init__.py", "")
    with pytest.raises(BinaryError, match="no onnxruntime_pybind11_state"):
        read_wheel(empty)
    broken = tmp_path / "broken.whl"
    broken.write_bytes(b"not a zip")
    with pytest.raises(BinaryError, match="not a wheel"):
        read_wheel(broken)
