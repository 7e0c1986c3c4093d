"""Fix every input to a static shape, then simplify with onnxsim (as the bucket build does)."""

from __future__ import annotations

from collections.abc import Mapping

import onnx

from retinaface_coreml_toolchain.errors import ModelError
from retinaface_coreml_toolchain.optimize.errors import InputShapeError

Shape = tuple[int, ...]


def parse_input_shape(text: str) -> tuple[str, Shape]:
    """``"input=1,3,224,224"`` -> ``("input", (1, 3, 224, 224))``."""
    name, sep, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        shape = ()
    if not sep or not name or not shape or min(shape) < 1:
        raise InputShapeError(
            f"--input-shape '{text}' is not NAME=D1,D2,...; give positive dims, "
            "e.g. --input-shape input=1,3,224,224"
        )
    return name, shape


def model_inputs(model: onnx.ModelProto) -> dict[str, tuple[int | None, ...]]:
    """The real inputs (initializers excluded), None for a dynamic dim."""
    constants = {init.name for init in model.graph.initializer}
    return {
        info.name: tuple(
            d.dim_value if d.HasField("dim_value") else None
            for d in info.type.tensor_type.shape.dim
        )
        for info in model.graph.input
        if info.name not in constants
    }


def resolve_shapes(
    model: onnx.ModelProto, requested: Mapping[str, Shape], *, source: str
) -> dict[str, Shape]:
    """Every input's static shape: the requested one, else the model's with dynamic dims 1."""
    inputs = model_inputs(model)
    for name, shape in requested.items():
        if name not in inputs:
            raise InputShapeError(
                f"{source}: no input named '{name}' (inputs: {', '.join(inputs)}); "
                "fix the name in --input-shape"
            )
        dims = inputs[name]
        if len(shape) != len(dims):
            raise InputShapeError(
                f"{source}: --input-shape {name} has rank {len(shape)}, the input has rank "
                f"{len(dims)} {_fmt(dims)}; give {len(dims)} dims"
            )
        fixed = [
            i for i, (want, has) in enumerate(zip(shape, dims, strict=True)) if has and want != has
        ]
        if fixed:
            raise InputShapeError(
                f"{source}: --input-shape {name} dim {fixed[0]} is {shape[fixed[0]]}, the model "
                f"fixes it to {dims[fixed[0]]} {_fmt(dims)}; keep the model's static dims"
            )
    return {
        name: tuple(requested.get(name, tuple(d or 1 for d in dims)))
        for name, dims in inputs.items()
    }


def fix_and_simplify(model: onnx.ModelProto, shapes: Mapping[str, Shape], *, source: str):
    """onnxsim with the inputs overwritten to ``shapes``; raises ModelError if it cannot verify."""
    import onnxsim

    try:
        simplified, ok = onnxsim.simplify(
            model, overwrite_input_shapes={name: list(s) for name, s in shapes.items()}
        )
    except Exception as exc:  # onnxsim raises RuntimeError/ValueError/... from its C++ core
        raise ModelError(f"{source}: onnxsim could not simplify it: {exc}") from exc
    if not ok:
        raise ModelError(f"{source}: onnxsim could not verify its simplified model")
    return simplified


def _fmt(dims: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
