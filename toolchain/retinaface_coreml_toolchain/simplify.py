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

from retinaface_coreml_toolchain.errors import ModelError
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
    key = f"{model_name}{bucket.name}{hashlib.sha256(content).hexdigest()[:40]}"
    # ORT checks each character with C's isalnum (ASCII only), not Python's Unicode one.
    key = "".join(ch for ch in key if ch.isascii() and ch.isalnum())
    if len(key) > 64:
        raise ModelError(f"cache key {key!r} is longer than 64 characters; shorten [model] name")
    return key


def simplify_bucket(
    source,
    bucket: Bucket,
    *,
    model_name: str,
    input_name: str,
    ort_version: str = "1.32",
    model_format: str = "mlprogram",
):
    """Return (static ModelProto with COREML_CACHE_KEY stamped, its cache key).

    The shapes are fixed, onnxsim run and the rewrite passes tried by ``toolchain optimize``'s
    own driver: one path for the buckets and for any other model.
    """
    import onnx

    from retinaface_coreml_toolchain.optimize.driver import OptimizeOptions, optimize_model

    options = OptimizeOptions(
        input_shapes={input_name: (1, 3, bucket.height, bucket.width)},
        ort_versions=(ort_version,),
        model_format=model_format,
    )
    optimized, _ = optimize_model(source, options, name=f"bucket {bucket.name}")
    model = optimized.model
    left = sorted({n.op_type for n in model.graph.node} & SHAPE_OPS)
    if left:
        raise ModelError(f"bucket {bucket.name}: shape ops {left} survived onnxsim; not static")
    del model.metadata_props[:]
    model.producer_name, model.producer_version = PRODUCER, _own_version()
    key = cache_key(model_name, bucket, model.SerializeToString(deterministic=True))
    onnx.helper.set_model_props(model, {"COREML_CACHE_KEY": key, "bucket": bucket.name})
    onnx.checker.check_model(model, full_check=True)
    return model, key


def simplify_buckets(recipe: Recipe) -> SimplifyResult:
    """Write every bucket model into models/build/<name>/ (the folder is replaced whole)."""
    import onnxsim

    source = load_source(recipe)
    names = {i.name for i in source.graph.input}
    if recipe.model.input not in names:
        raise ModelError(
            f"{recipe.weights.path}: no input named {recipe.model.input!r} (has {sorted(names)}); "
            "fix [model] input in the recipe"
        )
    results = []
    with step("simplify"), staging_dir(recipe.bucket_dir) as tmp:
        for bucket in recipe.buckets:
            model, key = simplify_bucket(
                source,
                bucket,
                model_name=recipe.model.name,
                input_name=recipe.model.input,
                ort_version=recipe.coverage.ort_version,
                model_format=recipe.coverage.model_format,
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
    """e.g. ``models/build/simplify.json``: node counts and cache keys for later steps."""
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
