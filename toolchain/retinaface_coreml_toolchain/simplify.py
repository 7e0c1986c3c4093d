"""Step 2: one static-shape model per bucket: fix the input, onnxsim, onnx checker, stamp key.

With height and width fixed, onnxsim folds the Shape -> Gather -> Unsqueeze -> Concat chains
that feed Reshape and Resize into constants; those chains are what keeps the CoreML EP from
taking the whole graph.
"""

from __future__ import annotations

import collections
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from retinaface_coreml_toolchain.errors import ModelError, RecipeError
from retinaface_coreml_toolchain.files import staging_dir, write_bytes, write_json
from retinaface_coreml_toolchain.recipe import Bucket, Recipe
from retinaface_coreml_toolchain.source import load_source
from retinaface_coreml_toolchain.steplog import step

# Op types that only exist to compute shapes at run time; none may survive simplification.
SHAPE_OPS = frozenset({"Shape", "Gather", "Unsqueeze", "ConstantOfShape", "Range"})
PRODUCER = "retinaface-coreml-toolchain"


@dataclass(frozen=True, kw_only=True)
class SimplifiedBucket:
    bucket: str
    path: Path
    nodes_before: int
    nodes_after: int
    op_counts: dict[str, int]
    coreml_cache_key: str
    sha256: str


@dataclass(frozen=True, kw_only=True)
class SimplifyResult:
    buckets: tuple[SimplifiedBucket, ...]
    onnxsim_version: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "onnxsim_version": self.onnxsim_version,
            "buckets": [{**asdict(b), "path": str(b.path)} for b in self.buckets],
        }


def cache_key(model_name: str, bucket: Bucket, content: bytes) -> str:
    """COREML_CACHE_KEY from the model's content, e.g. ``retinaface384x640`` + 40 hex digits.

    ORT accepts letters and digits only, at most 64 characters; anything else makes it fall
    back to a hash of the model path, which changes with every install location.
    """
    # ORT checks each character with C's isalnum (ASCII only), not Python's Unicode one.
    prefix = "".join(ch for ch in f"{model_name}{bucket.name}" if ch.isascii() and ch.isalnum())
    digits = min(40, 64 - len(prefix))
    if digits < 16:
        raise ModelError(
            f"cache key prefix {prefix!r} leaves fewer than 16 of ORT's 64 characters for the "
            "content hash; shorten the recipe's file name or the bucket name"
        )
    return prefix + hashlib.sha256(content).hexdigest()[:digits]


def simplify_bucket(
    source,
    bucket: Bucket,
    *,
    model_name: str,
    ort_versions: tuple[str, ...] = ("1.32",),
    model_format: str = "mlprogram",
    run_passes: bool = True,
    no_shape_ops: bool = False,
):
    """Return (static ModelProto with COREML_CACHE_KEY stamped, its cache key).

    The shapes are fixed, onnxsim run and (``run_passes``) the rewrite passes tried by
    ``toolchain optimize``'s own driver, judged under every ORT series of the gate: one path
    for the buckets and for any other model. ``no_shape_ops`` (RetinaFace): none of SHAPE_OPS
    may survive; elsewhere a Gather may be real work, and the coverage gate judges it.
    """
    import onnx

    from retinaface_coreml_toolchain.optimize.driver import OptimizeOptions, optimize_model

    options = OptimizeOptions(
        input_shapes=dict(bucket.inputs),
        ort_versions=ort_versions,
        model_format=model_format,
        **({} if run_passes else {"passes": ()}),
    )
    optimized, _ = optimize_model(source, options, name=f"{model_name} bucket {bucket.name}")
    model = optimized.model
    left = sorted({n.op_type for n in model.graph.node} & SHAPE_OPS)
    if left and no_shape_ops:
        raise ModelError(f"bucket {bucket.name}: shape ops {left} survived onnxsim; not static")
    del model.metadata_props[:]
    model.producer_name, model.producer_version = PRODUCER, _own_version()
    key = cache_key(model_name, bucket, model.SerializeToString(deterministic=True))
    onnx.helper.set_model_props(model, {"COREML_CACHE_KEY": key, "bucket": bucket.name})
    onnx.checker.check_model(model, full_check=True)
    return model, key


def simplify_buckets(recipe: Recipe) -> SimplifyResult:
    """Write every bucket model into models/build/<name>/buckets/ (replaced whole)."""
    import onnxsim

    from retinaface_coreml_toolchain.optimize.shapes import resolve_shapes

    source = load_source(recipe)
    for bucket in recipe.buckets:  # unknown input, wrong rank, changed static dim: one line
        try:
            resolve_shapes(source, bucket.inputs, source=f"{recipe.path} bucket {bucket.name}")
        except ModelError as exc:
            raise RecipeError(str(exc)) from None
    versions = recipe.gate_versions()
    results = []
    with step(f"simplify {recipe.name}"), staging_dir(recipe.bucket_dir) as tmp:
        for bucket in recipe.buckets:
            model, key = simplify_bucket(
                source,
                bucket,
                model_name=recipe.name,
                ort_versions=versions,
                model_format=recipe.gate.formats[0],
                run_passes=recipe.optimize,
                no_shape_ops=recipe.detector is not None,
            )
            data = model.SerializeToString(deterministic=True)
            digest = write_bytes(tmp / f"{bucket.name}.onnx", data)
            results.append(
                SimplifiedBucket(
                    bucket=bucket.name,
                    path=recipe.bucket_path(bucket),
                    nodes_before=len(source.graph.node),
                    nodes_after=len(model.graph.node),
                    op_counts=dict(
                        sorted(collections.Counter(n.op_type for n in model.graph.node).items())
                    ),
                    coreml_cache_key=key,
                    sha256=digest,
                )
            )
    result = SimplifyResult(buckets=tuple(results), onnxsim_version=onnxsim.__version__)
    write_json(record_path(recipe), result.to_dict())
    return result


def record_path(recipe: Recipe) -> Path:
    """e.g. ``models/build/retinaface/simplify.json``: node counts and cache keys."""
    return recipe.build_dir / "simplify.json"


def _own_version() -> str:
    from retinaface_coreml import __version__

    return __version__


def render(record: dict[str, Any]) -> str:
    lines = [f"{'bucket':<9} {'nodes':>6} {'->':^4} {'after':>5}  coreml cache key"]
    for b in record["buckets"]:
        lines.append(
            f"{b['bucket']:<9} {b['nodes_before']:>6} {'->':^4} {b['nodes_after']:>5}  "
            f"{b['coreml_cache_key']}"
        )
    lines.append(f"(onnxsim {record['onnxsim_version']}; written to {Path(b['path']).parent})")
    return "\n".join(lines)
