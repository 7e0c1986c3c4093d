"""Schema-2 models directories for the runtime's tests (docs/manifest.md).

* ``convert`` copies the build's output (``make models``: RetinaFace, manifest schema 2).
* ``add_generated`` packages small generated ONNX models beside it, with real bucket files:
  ``convnet`` (a conv net, dynamic batch, batch items independent) and ``twoinputs`` (two
  inputs, two outputs, batch items not independent).

The generated models are packaged here rather than by ``toolchain build`` so that the runtime
suite also runs in ``make test-ort130``'s venv, which has no toolchain; their records follow
docs/manifest.md, and tests/toolchain/test_any_model.py checks what the real build writes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from retinaface_coreml import coreml
from retinaface_coreml.artifacts import MANIFEST_NAME, hash_tree

ROOT = Path(__file__).resolve().parents[2]


def node_records(model: bytes | str | Path) -> tuple[list[dict], list[dict]]:
    """The model's inputs and outputs as onnxruntime's NodeArg reports them."""
    source = str(model) if isinstance(model, Path) else model
    session = onnxruntime.InferenceSession(source, providers=["CPUExecutionProvider"])

    def records(nodes) -> list[dict]:
        return [{"name": n.name, "type": n.type, "shape": list(n.shape)} for n in nodes]

    return records(session.get_inputs()), records(session.get_outputs())


def write_manifest(folder: Path, models: dict[str, dict[str, Any]], versions: dict) -> Path:
    """Write ``folder/manifest.json`` (schema 2) over every file now in ``folder``."""
    manifest = {
        "schema_version": 2,
        "versions": versions,
        "files": hash_tree(folder, skip=MANIFEST_NAME),
        "models": models,
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return folder


def convert(built: Path, target: Path, *, generated: Path | None = None) -> Path:
    """A copy of the build's models dir (schema 2) at ``target``; with ``generated`` (a folder
    for their sources), the generated models are packaged beside the built ones."""
    raw = json.loads((built / MANIFEST_NAME).read_text())
    if raw.get("schema_version") != 2:
        raise ValueError(f"{built}: manifest schema {raw.get('schema_version')}; run `make models`")
    shutil.copytree(built, target)
    models = raw["models"]
    if generated is not None:
        models.update(add_generated(target, generated))
    return write_manifest(target, models, raw.get("versions", {}))


# --- generated models ---------------------------------------------------------------------------


def _stamp(model, key: str) -> bytes:
    from onnx import helper

    helper.set_model_props(model, {"COREML_CACHE_KEY": key})
    return model.SerializeToString()


def _static(model, shapes: dict[str, list[int]]):
    """A copy of ``model`` whose inputs have these static shapes (outputs left to inference)."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for value in copy.graph.input:
        dims = value.type.tensor_type.shape.dim
        for dim, size in zip(dims, shapes[value.name], strict=True):
            dim.ClearField("dim_param")
            dim.dim_value = size
    for value in copy.graph.output:
        for dim in value.type.tensor_type.shape.dim:
            dim.ClearField("dim_param")
    return copy


def convnet_model():
    """Conv(3->4, 3x3, pad 1) + Relu on ["batch", 3, "h", "w"]: batch items independent."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    weight = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        "convnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, "h", "w"])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def twoinputs_model():
    """s = a + b, p = a * b on ["n", 8]: two inputs, two outputs."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Mul", ["a", "b"], ["p"])],
        "twoinputs",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 8]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["n", 8]),
        ],
        [
            helper.make_tensor_value_info("s", TensorProto.FLOAT, ["n", 8]),
            helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", 8]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


GENERATED = {
    # name: (builder, batch_independent, {bucket name: {input: shape}})
    "convnet": (
        convnet_model,
        True,
        {"b1_16x16": {"x": [1, 3, 16, 16]}, "b2_16x16": {"x": [2, 3, 16, 16]}},
    ),
    "twoinputs": (twoinputs_model, False, {"n2": {"a": [2, 8], "b": [2, 8]}}),
}


def add_generated(models_dir: Path, sources: Path) -> dict[str, dict[str, Any]]:
    """Write each generated model's source to ``sources/<name>.onnx`` and its buckets into
    ``models_dir/<name>/``; return their schema-2 records."""
    sources.mkdir(parents=True, exist_ok=True)
    options = dict(coreml.DEFAULT_OPTIONS)
    records = {}
    for name, (build, independent, buckets) in GENERATED.items():
        model = build()
        source_bytes = model.SerializeToString()
        (sources / f"{name}.onnx").write_bytes(source_bytes)
        digest = hashlib.sha256(source_bytes).hexdigest()
        inputs, outputs = node_records(source_bytes)
        (models_dir / name).mkdir(parents=True, exist_ok=True)
        bucket_records = []
        for bucket, shapes in buckets.items():
            key = f"{name}{bucket}{digest[:16]}"
            data = _stamp(_static(model, shapes), key)
            (models_dir / name / f"{bucket}.onnx").write_bytes(data)
            bucket_records.append(
                {
                    "name": bucket,
                    "file": f"{name}/{bucket}.onnx",
                    "inputs": shapes,
                    "coreml_cache_key": key,
                    "full_resolution": False,
                }
            )
        records[name] = {
            "name": name,
            "source": {"sha256": digest, "size": len(source_bytes), "origin": "generated"},
            "inputs": inputs,
            "outputs": outputs,
            "batch_independent": independent,
            "buckets": bucket_records,
            "coreml": {
                "provider_options": options,
                "options_digest": coreml.options_digest(options),
            },
            "coreml_cache": [],
            "precompile": {"status": "skipped", "reason": "generated for the tests"},
        }
    return records
