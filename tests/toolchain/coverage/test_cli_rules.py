"""`toolchain rules check`: exit codes, the one-line errors, --json, and the wheel cache."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from retinaface_coreml_toolchain.cli import cli
from retinaface_coreml_toolchain.coverage import ort_wheel
from retinaface_coreml_toolchain.coverage.ort_wheel import DownloadError, macos_wheel
from retinaface_coreml_toolchain.coverage.rules import TABLES
from tests.toolchain.coverage.ep_blobs import blob, class_name, table_blob, write_wheel


@pytest.fixture
def no_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests never download: any pip call fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"pip was called: {args}")

    monkeypatch.setattr(ort_wheel.subprocess, "run", refuse)


def cached(root: Path, version: str, image: bytes) -> Path:
    name = f"onnxruntime-{version}-cp312-cp312-macosx_14_0_arm64.whl"
    return write_wheel(root / version / name, image)


def run(*args: str):
    return CliRunner().invoke(cli, ["rules", "check", *args])


def test_clean_exits_0_and_uses_the_cached_wheel(tmp_path: Path, no_pip: None) -> None:
    cached(tmp_path, "1.23.2", table_blob(TABLES[(1, 23)]))
    result = run("1.23.2", "--download-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "against the 1.23 rule table: clean" in result.output


def test_stale_exits_1_with_the_diff_and_one_error_line(tmp_path: Path, no_pip: None) -> None:
    table = TABLES[(1, 24)]
    image = blob(
        builders=[*map(class_name, set(table.builders.values())), "Where"],
        mlprogram=map(class_name, table.mlprogram),
        messages=table.messages,
    )
    cached(tmp_path, "1.26.0", image)
    result = run("1.26.0", "--download-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "+ 'where'" in result.output
    assert "error: the 1.24 rule table is stale for onnxruntime 1.26.0" in result.output


def test_json_prints_the_record(tmp_path: Path, no_pip: None) -> None:
    cached(tmp_path, "1.32.0", table_blob(TABLES[(1, 32)]))
    result = run("1.32.0", "--download-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["table"] == "1.32" and record["stale"] is False and record["predictor_accepts"]
    assert {d["fact"] for d in record["diffs"]} == {"builders", "mlprogram", "trivial", "messages"}


@pytest.mark.parametrize(
    ("version", "says"),
    [
        ("1.23", "give the full version, e.g. 1.23.2"),
        ("latest", "is not an onnxruntime release"),
        ("1.21.1", "no CoreML rule table at or below ONNX Runtime 1.21"),
    ],
)
def test_bad_versions_exit_2_with_one_line(version: str, says: str, no_pip: None) -> None:
    result = run(version)
    assert result.exit_code == 2
    assert says in result.output and len(result.output.strip().splitlines()) == 1


def test_a_broken_cached_wheel_exits_2(tmp_path: Path, no_pip: None) -> None:
    wheel = tmp_path / "1.24.4" / "onnxruntime-1.24.4-cp312-cp312-macosx_14_0_arm64.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"truncated")
    result = run("1.24.4", "--download-dir", str(tmp_path))
    assert result.exit_code == 2 and "not a wheel" in result.output


def test_no_release_names_the_newest_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    said = (
        "ERROR: Could not find a version that satisfies the requirement onnxruntime==9.9.9 "
        "(from versions: 1.24.1, 1.32.0, 1.28.0)\n"
        "ERROR: No matching distribution found for onnxruntime==9.9.9\n"
    )
    calls: list[list[str]] = []

    def pip(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", said)

    monkeypatch.setattr(ort_wheel.subprocess, "run", pip)
    with pytest.raises(DownloadError, match=r"the newest release with one is 1\.32\.0"):
        macos_wheel("9.9.9", download_dir=tmp_path)
    assert len(calls) == len(ort_wheel.PYTHONS)  # each Python tag tried once
    assert "--platform" in calls[0] and ort_wheel.PLATFORM in calls[0]
    assert not (tmp_path / "9.9.9").exists()  # nothing half-written is left to look cached


def test_a_network_failure_is_one_line_and_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def pip(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", "ERROR: Could not fetch URL: offline\n")

    monkeypatch.setattr(ort_wheel.subprocess, "run", pip)
    with pytest.raises(DownloadError, match="check the network"):
        macos_wheel("1.32.0", download_dir=tmp_path)
    assert len(calls) == 1
