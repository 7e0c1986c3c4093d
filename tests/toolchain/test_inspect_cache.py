"""`toolchain inspect-cache`: real ML Packages (written by coremltools, not by ORT) in ORT's
cache layout, checked against the repository's bucket models; runs on any OS."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from retinaface_coreml_toolchain.cli import cli
from tests.conftest import ROOT

RECIPE = ROOT / "models" / "retinaface.toml"
ENTRY = "1.32.0/{macos}/5c0f1b7a9e21/{key}/0_static_mlprogram/model"


def keys() -> dict[str, str]:
    record = json.loads((ROOT / "models" / "build" / "retinaface" / "simplify.json").read_text())
    return {b["bucket"]: b["coreml_cache_key"] for b in record["buckets"]}


def anchors(height: int, width: int) -> int:
    return sum((height // s) * (width // s) * 2 for s in (8, 16, 32))


def save_package(height: int, width: int, path: Path) -> Path:
    """An ML Package with RetinaFace's I/O for one bucket, macOS 14 target (spec version 8)."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    n = anchors(height, width)

    @mb.program(
        input_specs=[mb.TensorSpec(shape=(1, 3, height, width))], opset_version=ct.target.macOS14
    )
    def program(input):
        mean = mb.reshape(x=mb.reduce_mean(x=input, axes=[1, 2, 3]), shape=[1, 1, 1])
        return (
            mb.tile(x=mean, reps=[1, n, 4], name="loc"),
            mb.tile(x=mean, reps=[1, n, 2], name="conf"),
            mb.tile(x=mean, reps=[1, n, 10], name="landmarks"),
        )

    model = ct.convert(
        program,
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.macOS14,
        skip_model_load=True,
    )
    model.save(str(path))
    return path


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[str, Path]:
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    out = tmp_path_factory.mktemp("mlpackages")
    return {
        name: save_package(height, width, out / f"{name}.mlpackage")
        for name, height, width in (("384x640", 384, 640), ("480x640", 480, 640))
    }


def place(root: Path, package: Path, *, key: str, macos: str = "14") -> Path:
    target = root / ENTRY.format(macos=macos, key=key)
    shutil.copytree(package, target)
    return target


def inspect(root: Path, *extra: str):
    return CliRunner().invoke(
        cli, ["--recipe", str(RECIPE), "inspect-cache", "--dir", str(root), *extra]
    )


def test_no_entries_says_so(tmp_path: Path) -> None:
    result = inspect(tmp_path)
    assert result.exit_code == 0
    assert result.output.startswith(f"no CoreML cache entries under {tmp_path}")


def test_a_matching_entry_is_ok(tmp_path: Path, packages) -> None:
    place(tmp_path, packages["384x640"], key=keys()["384x640"])
    result = inspect(tmp_path, "--json")
    assert result.exit_code == 0, result.output
    (model,) = json.loads(result.output)["models"]
    assert model["bucket"] == "384x640" and model["problems"] == []
    assert model["spec_version"] == 8 and model["partition"] == "0_static_mlprogram"
    assert model["inputs"] == [{"name": "input", "shape": [1, 3, 384, 640], "dtype": "float32"}]
    assert [o["shape"] for o in model["outputs"]] == [[1, 10080, 4], [1, 10080, 2], [1, 10080, 10]]
    text = inspect(tmp_path).output
    assert "384x640" in text and "loc[1,10080,4]" in text and " ok" in text


def test_shapes_of_another_bucket_fail_with_the_difference(tmp_path: Path, packages) -> None:
    place(tmp_path, packages["480x640"], key=keys()["384x640"])
    result = inspect(tmp_path)
    assert result.exit_code == 1
    assert "input input[1,3,480,640] where the bucket has input[1,3,384,640]" in result.output


def test_a_spec_too_new_for_the_entry_s_macos_fails(tmp_path: Path, packages) -> None:
    place(tmp_path, packages["384x640"], key=keys()["384x640"], macos="13")
    result = inspect(tmp_path)
    assert result.exit_code == 1 and "spec version 8 needs a newer macOS than 13" in result.output


def test_unknown_keys_and_entries_without_a_model_are_reported(tmp_path: Path, packages) -> None:
    place(tmp_path, packages["384x640"], key="retinaface384x640" + "0" * 40)
    partial = tmp_path / "1.32.0" / "14" / "5c0f1b7a9e21" / keys()["640x640"]
    partial.mkdir(parents=True)
    (partial / "model.txt").write_text("")
    result = inspect(tmp_path, "--json")
    assert result.exit_code == 1
    problems = json.loads(result.output.split("\nerror:")[0])["problems"]
    assert any("matches no bucket" in p for p in problems)
    assert any(keys()["640x640"] in p and "no partition model" in p for p in problems)


def tree_state(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below ``root`` with its bytes and mtime."""
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_inspecting_never_writes_into_the_cache(tmp_path: Path, packages) -> None:
    # coremltools' ModelPackage rewrites Manifest.json when it is destroyed; the runtime's
    # entry.json hash of that file would then fail and the entry be compiled again.
    place(tmp_path, packages["384x640"], key=keys()["384x640"])
    before = tree_state(tmp_path)
    assert any(name.endswith("Manifest.json") for name in before)
    result = inspect(tmp_path, "--json")
    assert result.exit_code == 0, result.output
    assert tree_state(tmp_path) == before


def test_an_unreadable_manifest_is_a_problem_not_a_crash(tmp_path: Path, packages) -> None:
    model = place(tmp_path, packages["384x640"], key=keys()["384x640"])
    (model / "Manifest.json").write_text("{not json")
    result = inspect(tmp_path)
    assert result.exit_code == 1 and "unreadable spec: JSONDecodeError" in result.output
