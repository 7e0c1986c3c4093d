"""Build ``.venv-compat`` from nothing: CPU torch, the app's helpers, the app's sdist unpacked.

Run with the Python that makes the venv (Linux: 3.11, the on-disk CPU torch wheel is cp311;
macOS arm64: 3.11 or later, PyPI's torch 2.13.0 for macOS 14+)::

    python3 -m compat.setup_env            # what `make compat` runs when the venv is missing

Standard library only. Each download is checked against the sha256 pinned in ``compat/pins.py``
before it is used; the sdist is unpacked into a temp folder in ``build/compat/`` and moved into
place with one rename. A failure prints one line naming what failed and exits 2.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import venv
from pathlib import Path

from compat import pins

PIP_QUIET = ("--quiet", "--disable-pip-version-check")
TORCH_PYTHON = (3, 11)


class SetupError(Exception):
    """A step of the venv build failed; the message names it and the fix."""


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SetupError(f"{what} failed (exit {result.returncode}): {detail}")


def _pip(python: Path, *args: str, what: str) -> None:
    _run([str(python), "-m", "pip", *args, *PIP_QUIET], what)


def _checked(path: Path, sha256: str) -> Path:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise SetupError(
            f"{path}: sha256 {digest}, pinned {sha256}; delete it and rerun, or update "
            "compat/pins.py after reading what changed"
        )
    return path


def _download(python: Path, requirement: str, file: str, sha256: str, *extra: str) -> Path:
    """Download one distribution with pip (no dependencies) into build/compat/, hash-checked."""
    target = pins.BUILD_DIR / file
    if not target.exists():
        _pip(
            python,
            "download",
            "--no-deps",
            *extra,
            "--dest",
            str(pins.BUILD_DIR),
            requirement,
            what=f"pip download {requirement}",
        )
    if not target.exists():
        raise SetupError(f"pip download {requirement} did not write {target}")
    return _checked(target, sha256)


def _unpack_app(sdist: Path) -> None:
    """Unpack the sdist next to it, atomically: build/compat/pyfaceau-1.4.1/."""
    if pins.APP_FILE.exists():
        return
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=pins.BUILD_DIR))
    try:
        with tarfile.open(sdist) as archive:
            archive.extractall(staging, filter="data")
        if pins.APP_DIR.exists():
            shutil.rmtree(pins.APP_DIR)
        (staging / pins.APP_DIR.name).rename(pins.APP_DIR)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not pins.APP_FILE.exists():
        raise SetupError(f"{sdist}: no {pins.APP_MEMBER} inside; is it pyfaceau's sdist?")


def _check_cpu_torch(python: Path, *, system: str = sys.platform) -> str:
    probe = "import torch; print(torch.__version__, torch.version.cuda)"
    result = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
    version, _, cuda = result.stdout.strip().partition(" ")
    # PyPI's macOS wheel is CPU (and MPS) only and carries no "+cpu" label.
    label_ok = version.endswith("+cpu") or (system == "darwin" and version == "2.13.0")
    if result.returncode != 0 or cuda != "None" or not label_ok:
        raise SetupError(
            f"{python}: torch {version or '(not importable)'} with CUDA {cuda or '?'} is not the "
            "CPU build; build the venv with Python 3.11, where pip takes the on-disk "
            "torch-2.13.0+cpu wheel"
        )
    return version


def check_platform(
    *, system: str = sys.platform, machine: str = platform.machine(), python=sys.version_info
) -> None:
    """Refuse, before pip runs, a platform where compat/requirements.txt has no CPU torch."""
    if system == "darwin":
        if machine != "arm64":
            raise SetupError(
                f"macOS on {machine}: PyPI has no torch 2.13.0 for Intel Macs (none past 2.2.2); "
                "run `make compat` on an Apple silicon Mac (macOS 14+) or on Linux"
            )
        if tuple(python[:2]) < TORCH_PYTHON:
            raise SetupError(f"Python {python[0]}.{python[1]}: torch 2.13.0 needs 3.11 or later")
    elif tuple(python[:2]) != TORCH_PYTHON:
        # Elsewhere pip would fetch PyPI's CUDA build of torch (gigabytes) before any check.
        raise SetupError(
            f"Python {python[0]}.{python[1]}: the on-disk CPU torch wheel is for Python "
            f"{'.'.join(map(str, TORCH_PYTHON))}; run `make compat PYTHON=python3.11`"
        )


def build(venv_dir: Path = pins.VENV) -> None:
    """Create ``venv_dir`` with everything the harness needs except our own package."""
    check_platform()
    stamp = venv_dir / ".installed"
    stamp.unlink(missing_ok=True)
    if not (venv_dir / "bin" / "python").exists():
        venv.EnvBuilder(with_pip=True).create(venv_dir)
    python = venv_dir / "bin" / "python"
    pins.BUILD_DIR.mkdir(parents=True, exist_ok=True)
    print(f"compat venv: installing {pins.REQUIREMENTS.name} (torch CPU) into {venv_dir}")
    _pip(python, "install", "-r", str(pins.REQUIREMENTS), what="pip install -r requirements")
    torch_version = _check_cpu_torch(python)
    wheel = _download(
        python,
        f"openface-test=={pins.OPENFACE_VERSION}",
        pins.OPENFACE_WHEEL,
        pins.OPENFACE_WHEEL_SHA256,
        "--only-binary",
        ":all:",
    )
    _pip(python, "install", "--no-deps", str(wheel), what=f"pip install --no-deps {wheel.name}")
    # pip prepares the sdist's metadata (a Cython build requirement, from wheels) to download it.
    sdist = _download(
        python,
        f"pyfaceau=={pins.APP_VERSION}",
        pins.APP_SDIST,
        pins.APP_SDIST_SHA256,
        "--no-binary",
        "pyfaceau",
    )
    _unpack_app(sdist)
    stamp.write_text(f"torch {torch_version}\n")
    print(f"compat venv ready: torch {torch_version}, app file {pins.APP_FILE}")


def main() -> int:
    try:
        build()
    except (SetupError, OSError) as exc:
        print(f"compat setup: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
