"""Atomic writes: every artefact goes through a temp file in its directory, then os.replace.

The writer is the runtime's own ``atomic.py``: ``_atomic.py`` here is a symlink to
``src/retinaface_coreml/atomic.py`` (one file in git), which hatchling stores as a regular file in
the toolchain wheel, so `coverage` and `optimize` run where the runtime is not installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from retinaface_coreml_toolchain._atomic import atomic_writer
from retinaface_coreml_toolchain.errors import MissingInputError


def write_bytes(path: Path, data: bytes) -> str:
    """Write ``data`` atomically to ``path``; return its sha256."""
    with atomic_writer(path) as handle:
        handle.write(data)
    return hashlib.sha256(data).hexdigest()


def write_json(path: Path, record: Any) -> None:
    """Write ``record`` as sorted, indented JSON atomically (byte-stable across runs)."""
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    write_bytes(path, text.encode())


def copy_file(src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst`` atomically; return the sha256 of what was written."""
    digest = hashlib.sha256()
    with src.open("rb") as source, atomic_writer(dst) as target:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
            target.write(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """A fresh temp directory beside ``final``; on success it replaces ``final`` whole."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; a published folder is readable like others
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_step_record(path: Path, step_name: str) -> Any:
    """The JSON record an earlier step wrote, e.g. ``models/build/retinaface/simplify.json``.

    Missing or unreadable: MissingInputError naming the file and the step to run.
    """
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise MissingInputError(f"{path}: missing; run `toolchain {step_name}` first") from None
    except (OSError, ValueError) as exc:
        raise MissingInputError(
            f"{path}: unreadable ({exc}); run `toolchain {step_name}`"
        ) from None
