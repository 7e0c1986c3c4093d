"""Fetch one onnxruntime release's macOS arm64 wheel from PyPI with pip, into a cache."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from retinaface_coreml_toolchain.errors import ToolchainError
from retinaface_coreml_toolchain.files import staging_dir
from retinaface_coreml_toolchain.steplog import step

# pip expands a macOS platform tag to every older macOS and to universal2, so one tag takes the
# wheels each series published: macosx_13_0_universal2 (<= 1.22), macosx_13_0_arm64 (1.23),
# macosx_14_0_arm64 (1.24+) (spec §9), and a later macOS minimum up to 26.
PLATFORM = "macosx_26_0_arm64"
# The EP is the same C++ in every CPython build of a release; the first one pip finds is read.
PYTHONS = ("3.12", "3.13", "3.11", "3.14")
VERSION = re.compile(r"\d+\.\d+\.\d+")


class DownloadError(ToolchainError):
    """The release's macOS wheel could not be downloaded."""


def cache_root() -> Path:
    """The wheel cache, e.g. ``~/.cache/retinaface-coreml-toolchain/ort-wheels``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "retinaface-coreml-toolchain" / "ort-wheels"


def check_version(version: str) -> str:
    """``"1.23.2"`` passes; anything but a full X.Y.Z release raises DownloadError."""
    if not VERSION.fullmatch(version):
        raise DownloadError(
            f"'{version}' is not an onnxruntime release; give the full version, e.g. 1.23.2"
        )
    return version


def macos_wheel(version: str, *, download_dir: Path | None = None) -> Path:
    """The cached wheel, e.g. ``<cache>/1.23.2/onnxruntime-1.23.2-cp312-...-macosx_13_0_arm64.whl``.

    Downloaded once into a staging folder that is published whole, so a broken download never
    looks cached.
    """
    folder = (download_dir or cache_root()) / check_version(version)
    found = _wheels(folder, version)
    if found:
        return found[0]
    with step(f"download onnxruntime {version} (macOS arm64)"), staging_dir(folder) as staging:
        _pip_download(version, staging)
    return _wheels(folder, version)[0]


def _wheels(folder: Path, version: str) -> list[Path]:
    return sorted(folder.glob(f"onnxruntime-{version}-*-macosx_*.whl"))


def _pip_download(version: str, dest: Path) -> None:
    """Run pip for each Python tag until one has a wheel; raise with pip's reason otherwise."""
    said, versions = "", set()
    for python in PYTHONS:
        command = [
            sys.executable, "-m", "pip", "download", f"onnxruntime=={version}", "--no-deps",
            "--only-binary=:all:", "--platform", PLATFORM, "--python-version", python,
            "--implementation", "cp", "--disable-pip-version-check", "--quiet", "-d", str(dest),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode == 0 and _wheels(dest, version):
            return
        said = done.stderr
        versions |= _listed_versions(said)
        if "No matching distribution" not in said:
            break  # a network or index failure: another Python tag will not help
    raise DownloadError(_reason(version, said, versions))


def _listed_versions(pip_stderr: str) -> set[str]:
    """The releases pip saw with a matching wheel: its "(from versions: a, b)" list."""
    listed = re.search(r"\(from versions: ([^)]*)\)", pip_stderr)
    names = listed.group(1).split(",") if listed else []
    return {v.strip() for v in names if VERSION.fullmatch(v.strip())}


def _reason(version: str, pip_stderr: str, versions: set[str]) -> str:
    """One line: no such release or no Mac wheel (pip listed others), or no index reachable."""
    if versions:
        newest = max(versions, key=lambda v: tuple(map(int, v.split("."))))
        return (
            f"onnxruntime {version} has no macOS arm64 wheel on PyPI (no such release, or no Mac "
            f"build); the newest release with one is {newest}: pass that, or an older one"
        )
    last = next((line for line in reversed(pip_stderr.splitlines()) if line.strip()), "no output")
    return (
        f"pip could not download onnxruntime {version} for macOS arm64 ({last.strip()}); "
        "check the network and pip's index settings, then run again"
    )
