"""The toolchain's own wheel, built beside the runtime's by the package step.

``dist/retinaface_coreml_toolchain-0.1.0-py3-none-any.whl`` gives any project's CI the
``retinaface-coreml-toolchain coverage`` / ``optimize`` commands with no clone of this repository.
It is built from the checkout the running toolchain comes from (``toolchain/``), with hatchling
and ``SOURCE_DATE_EPOCH``, so two builds of the same sources are byte-identical.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from retinaface_coreml_toolchain.errors import PackageError
from retinaface_coreml_toolchain.steplog import step

log = logging.getLogger(__name__)

DISTRIBUTION = "retinaface-coreml-toolchain"
WHEEL_GLOB = "retinaface_coreml_toolchain-*.whl"


def source_dir() -> Path | None:
    """e.g. ``<checkout>/toolchain``; None when this toolchain was installed from its wheel."""
    folder = Path(__file__).resolve().parent.parent
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file() and f'name = "{DISTRIBUTION}"' in pyproject.read_text():
        return folder
    return None


def build_toolchain_wheel(dist: Path, *, env: Mapping[str, str]) -> Path | None:
    """Build the toolchain wheel into ``dist`` (replacing an older one); return its path.

    e.g. ``dist/retinaface_coreml_toolchain-0.1.0-py3-none-any.whl``. The wheel is built in a
    temp folder inside ``dist`` and moved in with one rename. None (logged) when there is no
    checkout to build from. ``env`` carries ``SOURCE_DATE_EPOCH`` (the package step's).
    """
    source = source_dir()
    if source is None:
        log.warning("no toolchain checkout beside %s: its wheel is built from a checkout", __file__)
        return None
    dist.mkdir(parents=True, exist_ok=True)
    with step("toolchain wheel"):
        tmp = Path(tempfile.mkdtemp(prefix=".toolchain-wheel.", dir=dist))
        try:
            command = [sys.executable, "-m", "build", "--wheel", "--no-isolation"]
            proc = subprocess.run(
                [*command, "--outdir", str(tmp), str(source)],
                env=dict(env), capture_output=True, text=True, check=False,
            )  # fmt: skip
            built = sorted(tmp.glob(WHEEL_GLOB))
            if proc.returncode != 0 or len(built) != 1:
                tail = (proc.stderr.strip().splitlines() or ["no wheel produced"])[-1]
                raise PackageError(f"python -m build failed in {source} ({tail})")
            for old in dist.glob(WHEEL_GLOB):
                old.unlink()
            target = dist / built[0].name
            os.replace(built[0], target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target
