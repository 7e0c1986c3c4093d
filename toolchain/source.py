"""Reading ONNX files safely: the fetched source weights and any model a user names."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from toolchain.errors import ChecksumError, MissingInputError, ModelError
from toolchain.recipe import Recipe


def load_onnx(path: Path):  # -> onnx.ModelProto (onnx is imported lazily)
    """Parse and check an ONNX file; a missing, truncated or corrupt file raises ModelError."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path}: no such file; run `toolchain fetch` first") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model)
    except (DecodeError, onnx.checker.ValidationError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{path}: not a valid ONNX model (truncated or corrupt: {first}); "
            "run `toolchain fetch` again or pass a complete file"
        ) from None
    if not model.graph.node:
        raise ModelError(f"{path}: the ONNX graph has no nodes (truncated?); fetch it again")
    return model


def load_source(recipe: Recipe):  # -> onnx.ModelProto
    """The fetched source model, checked against the sha256 that `toolchain fetch` recorded."""
    record_path = recipe.build_dir / "source.json"
    path = recipe.weights.path
    try:
        record = json.loads(record_path.read_text())
    except FileNotFoundError:
        raise MissingInputError(f"{record_path}: missing; run `toolchain fetch` first") from None
    except (OSError, ValueError) as exc:
        raise MissingInputError(
            f"{record_path}: unreadable ({exc}); run `toolchain fetch`"
        ) from None
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise MissingInputError(f"{path}: missing; run `toolchain fetch` first") from None
    if digest != record.get("sha256"):
        raise ChecksumError(
            f"{path}: sha256 {digest} differs from the fetched {record.get('sha256')} "
            "(the file changed since `toolchain fetch`); run `toolchain fetch` again"
        )
    return load_onnx(path)
