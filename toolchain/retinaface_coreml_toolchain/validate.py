"""Step 3: every bucket model must reproduce the source model (ORT CPU).

``[validate] inputs = "random"``: seeded uniform tensors in the recipe's range through both;
with ``batch_independent``, also a batch twice the bucket's through the source against the
bucket run on each slice. ``inputs = "images"`` (RetinaFace): the real photos, both models
given the same letterboxed tensor (the runtime's own preprocessing), so any difference comes
from simplification. A full-resolution bucket gets each photo scaled and
cropped to its exact size: no padding, so the source's run is the full-resolution reference.
Measuring is here; the pass/fail threshold is applied once, by ``check_validation``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retinaface_coreml.artifacts import ModelInfo
from retinaface_coreml_toolchain.errors import MissingInputError, ValidationFailed
from retinaface_coreml_toolchain.files import write_json
from retinaface_coreml_toolchain.recipe import Bucket, Recipe
from retinaface_coreml_toolchain.steplog import step

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True, kw_only=True)
class BucketValidation:
    bucket: str
    images: int
    max_abs_diff: dict[str, float]
    faces_source: int
    faces_bucket: int
    unmatched: int
    min_iou: float
    max_score_diff: float

    @property
    def worst_abs_diff(self) -> float:
        return max(self.max_abs_diff.values())


@dataclass(frozen=True, kw_only=True)
class RandomValidation:
    """One bucket against the source on seeded random inputs; diffs per output."""

    bucket: str
    runs: int
    max_abs_diff: dict[str, float]
    max_rel_diff: dict[str, float]  # max |diff| / max |source value| per output
    batch_slices_max_abs_diff: float | None = None  # batch_independent: slices vs batched

    @property
    def worst_abs_diff(self) -> float:
        return max(self.max_abs_diff.values())

    @property
    def worst_rel_diff(self) -> float:
        return max(self.max_rel_diff.values())


@dataclass(frozen=True, kw_only=True)
class ValidationResult:
    buckets: tuple[BucketValidation | RandomValidation, ...]
    images: tuple[str, ...]
    onnxruntime_version: str
    inputs: str = "images"
    seed: int | None = None
    range: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        record = {
            "onnxruntime_version": self.onnxruntime_version,
            "inputs": self.inputs,
            "images": list(self.images),
            "buckets": [{**asdict(b), "worst_abs_diff": b.worst_abs_diff} for b in self.buckets],
        }
        if self.inputs == "random":
            record["seed"], record["range"] = self.seed, list(self.range or ())
        return record


def record_path(recipe: Recipe) -> Path:
    """e.g. ``models/build/retinaface/validation.json``."""
    return recipe.build_dir / "validation.json"


def _session(path_or_bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one thread: the same sums in the same order every run
    options.log_severity_level = 3
    return ort.InferenceSession(path_or_bytes, options, providers=["CPUExecutionProvider"])


def load_images(folder: Path) -> list[tuple[str, np.ndarray]]:
    """The photos in ``folder`` as decoded arrays (grayscale stays 1-channel), sorted by name."""
    import cv2

    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise MissingInputError(f"{folder}: no .jpg/.png photos; fix [validate] images")
    images = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise MissingInputError(f"{path}: cannot decode this image; replace or remove it")
        images.append((path.name, image))
    return images


def cover(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` scaled to cover ``height`` x ``width`` and centre-cropped to exactly that size.

    A full-resolution bucket is validated on frames of its own size, so the tensor has no
    padding and the source model's run on it is the app's unpadded full-resolution run.
    """
    import cv2

    scale = max(height / image.shape[0], width / image.shape[1])
    size = (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale)))
    scaled = cv2.resize(
        image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    top, left = (scaled.shape[0] - height) // 2, (scaled.shape[1] - width) // 2
    return scaled[top : top + height, left : left + width]


def validate_bucket(
    recipe: Recipe, bucket: Bucket, source, images, spec: ModelInfo | None = None
) -> BucketValidation:
    """Run source and bucket model on every image; return the differences found."""
    from retinaface_coreml.decode import decode, pairwise_iou, prior_boxes
    from retinaface_coreml.preprocess import letterbox

    path = recipe.bucket_path(bucket)
    if not path.exists():
        raise MissingInputError(f"{path}: missing; run `toolchain simplify` first")
    model = _session(str(path))
    spec = spec or recipe.detector
    priors = prior_boxes(bucket.height, bucket.width, spec.strides, spec.min_sizes)
    diffs = dict.fromkeys(spec.outputs, 0.0)
    faces_source = faces_bucket = unmatched = 0
    min_iou, max_score_diff = 1.0, 0.0
    for _, image in images:
        if bucket.full_resolution:
            image = cover(image, bucket.height, bucket.width)
        tensor, _ = letterbox(image, bucket.height, bucket.width, spec.mean_bgr)
        want = source.run(list(spec.outputs), {spec.input: tensor})
        got = model.run(list(spec.outputs), {spec.input: tensor})
        for name, a, b in zip(spec.outputs, want, got, strict=True):
            if a.shape != b.shape:
                raise ValidationFailed(
                    f"{path}: output {name} has shape {b.shape}, the source gives {a.shape}"
                )
            diffs[name] = max(diffs[name], float(np.max(np.abs(a - b))))
        dets = [
            decode(
                *(o[0] for o in outs), priors,
                variance=spec.variance,
                score_threshold=recipe.validate.score_threshold,
                nms_threshold=recipe.validate.nms_threshold,
            )
            for outs in (want, got)
        ]  # fmt: skip
        faces_source += len(dets[0])
        faces_bucket += len(dets[1])
        if len(dets[0]) and len(dets[1]):
            iou = pairwise_iou(dets[0].boxes, dets[1].boxes)
            best = iou.max(axis=1)
            partner = iou.argmax(axis=1)
            min_iou = min(min_iou, float(best.min()))
            max_score_diff = max(
                max_score_diff,
                float(np.max(np.abs(dets[0].scores - dets[1].scores[partner]))),
            )
        unmatched += abs(len(dets[0]) - len(dets[1]))
        if len(dets[0]) != len(dets[1]) or (len(dets[0]) and not len(dets[1])):
            min_iou = 0.0
    return BucketValidation(
        bucket=bucket.name,
        images=len(images),
        max_abs_diff={k: float(f"{v:.3e}") for k, v in diffs.items()},
        faces_source=faces_source,
        faces_bucket=faces_bucket,
        unmatched=unmatched,
        min_iou=round(min_iou, 6),
        max_score_diff=float(f"{max_score_diff:.3e}"),
    )


def validate_buckets(recipe: Recipe) -> ValidationResult:
    """Validate every recipe bucket; write models/build/<name>/validation.json."""
    import onnxruntime as ort

    from retinaface_coreml_toolchain.source import load_source, source_model

    load_source(recipe)  # checks the sha256 recorded by fetch and parses the file
    spec = recipe.validate
    with step(f"validate {recipe.name}"):
        source = _session(str(recipe.source.path))
        if spec.inputs == "images":
            detector = source_model(recipe)
            images = load_images(spec.images)
            result = ValidationResult(
                buckets=tuple(
                    validate_bucket(recipe, b, source, images, detector) for b in recipe.buckets
                ),
                images=tuple(name for name, _ in images),
                onnxruntime_version=ort.__version__,
            )
        else:
            result = ValidationResult(
                buckets=tuple(
                    validate_random_bucket(recipe, i, b, source)
                    for i, b in enumerate(recipe.buckets)
                ),
                images=(),
                onnxruntime_version=ort.__version__,
                inputs="random",
                seed=spec.seed,
                range=(spec.low, spec.high),
            )
    write_json(record_path(recipe), result.to_dict())
    return result


def random_feed(rng: np.random.Generator, shapes, dtypes, low: float, high: float):
    """One input set: floats uniform in [low, high), integers in [low, high], bools 0/1."""
    feed = {}
    for name, shape in shapes.items():
        dtype = dtypes[name]
        if np.issubdtype(dtype, np.floating):
            feed[name] = rng.uniform(low, high, size=shape).astype(dtype)
        elif dtype == np.bool_:
            feed[name] = rng.integers(0, 2, size=shape).astype(dtype)
        else:
            feed[name] = rng.integers(int(low), int(high) + 1, size=shape).astype(dtype)
    return feed


def input_dtypes(session) -> dict[str, np.dtype]:
    """Each input's numpy dtype, from an ORT session's NodeArgs."""
    from onnx.helper import tensor_dtype_to_np_dtype

    return {i.name: tensor_dtype_to_np_dtype(_ORT_TYPES[i.type]) for i in session.get_inputs()}


def validation_feeds(
    recipe: Recipe, index: int, bucket: Bucket, session, *, rng: np.random.Generator | None = None
) -> list[dict[str, np.ndarray]]:
    """The ``count`` seeded input sets bucket number ``index`` is validated on (``random``);
    ``session`` gives the dtypes. The same feeds every call, so precompile's gate runs them too.
    """
    spec = recipe.validate
    rng = rng if rng is not None else np.random.default_rng([spec.seed, index])
    dtypes = input_dtypes(session)
    return [random_feed(rng, bucket.inputs, dtypes, spec.low, spec.high) for _ in range(spec.count)]


def validate_random_bucket(recipe: Recipe, index: int, bucket: Bucket, source) -> RandomValidation:
    """``count`` seeded input sets through source and bucket; with ``batch_independent``, a
    batch of twice the bucket's through the source against the bucket on each half."""
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument

    from retinaface_coreml_toolchain.optimize.equality import compare

    path = recipe.bucket_path(bucket)
    if not path.exists():
        raise MissingInputError(f"{path}: missing; run `toolchain simplify` first")
    model = _session(str(path))
    spec = recipe.validate
    names = [o.name for o in source.get_outputs()]
    rng = np.random.default_rng([spec.seed, index])
    feeds = validation_feeds(recipe, index, bucket, source, rng=rng)
    abs_diff = dict.fromkeys(names, 0.0)
    value = dict.fromkeys(names, 0.0)

    def run(session, feed, what):
        try:
            return dict(zip(names, session.run(names, feed), strict=True))
        except (Fail, InvalidArgument) as exc:
            raise ValidationFailed(
                f"{recipe.path}: bucket {bucket.name}: the {what} model cannot run its shapes "
                f"({str(exc).splitlines()[0]}); fix [[buckets]] inputs"
            ) from None

    for feed in feeds:
        for d in compare(run(source, feed, "source"), run(model, feed, "bucket")):
            abs_diff[d.output] = max(abs_diff[d.output], d.max_abs_diff)
            value[d.output] = max(value[d.output], d.max_abs_value)
    slices = None
    if recipe.batch_independent:
        doubled = {n: (2 * s[0], *s[1:]) for n, s in bucket.inputs.items()}
        feed = random_feed(rng, doubled, input_dtypes(source), spec.low, spec.high)
        batched = run(source, feed, "source (batch twice the bucket's)")
        halves = [
            run(model, {n: a[k * s[0] : (k + 1) * s[0]] for (n, a), s in
                        zip(feed.items(), bucket.inputs.values(), strict=True)}, "bucket")
            for k in range(2)
        ]  # fmt: skip
        joined = {n: np.concatenate([h[n] for h in halves]) for n in names}
        slices = max(d.max_abs_diff for d in compare(batched, joined))
    return RandomValidation(
        bucket=bucket.name,
        runs=spec.count,
        max_abs_diff={n: float(f"{abs_diff[n]:.3e}") for n in names},
        max_rel_diff={
            n: float(f"{(abs_diff[n] / value[n] if value[n] else abs_diff[n]):.3e}") for n in names
        },
        batch_slices_max_abs_diff=None if slices is None else float(f"{slices:.3e}"),
    )


_ORT_TYPES = {
    "tensor(float)": 1, "tensor(uint8)": 2, "tensor(int8)": 3, "tensor(int32)": 6,
    "tensor(int64)": 7, "tensor(bool)": 9, "tensor(float16)": 10, "tensor(double)": 11,
}  # fmt: skip


def shortfalls(result: ValidationResult, recipe: Recipe) -> list[str]:
    """What violates the recipe's tolerances, one phrase per bucket."""
    tol = recipe.validate
    problems = []
    for b in result.buckets:
        if isinstance(b, RandomValidation):
            problems += _random_shortfalls(b, recipe)
            continue
        if b.worst_abs_diff > tol.max_abs_diff:
            problems.append(f"{b.bucket}: max abs diff {b.worst_abs_diff:.2e} > {tol.max_abs_diff}")
        if b.unmatched or b.faces_source != b.faces_bucket:
            problems.append(f"{b.bucket}: {b.faces_bucket} faces vs {b.faces_source} from source")
        elif b.faces_source and b.min_iou < tol.min_iou:
            problems.append(f"{b.bucket}: a box moved (IoU {b.min_iou:.4f} < {tol.min_iou})")
    return problems


def _random_shortfalls(b: RandomValidation, recipe: Recipe) -> list[str]:
    tol = recipe.validate
    problems = []
    rel_ok = tol.max_rel_diff is not None and b.worst_rel_diff <= tol.max_rel_diff
    if b.worst_abs_diff > tol.max_abs_diff and not rel_ok:
        rel = "" if tol.max_rel_diff is None else f" and relative {b.worst_rel_diff:.2e} > "
        rel += "" if tol.max_rel_diff is None else f"{tol.max_rel_diff}"
        problems.append(
            f"{recipe.name} {b.bucket}: max abs diff {b.worst_abs_diff:.2e} > {tol.max_abs_diff}"
            + rel
        )
    slices = b.batch_slices_max_abs_diff
    if slices is not None and slices > tol.max_abs_diff:
        problems.append(
            f"{recipe.name} {b.bucket}: batch_independent, but bucket-sized slices differ from "
            f"the batched run by {slices:.2e} > {tol.max_abs_diff}; set batch_independent = false"
        )
    return problems


def check_validation(result: ValidationResult, recipe: Recipe) -> None:
    """The build gate: raise ValidationFailed (exit 1) naming every bucket out of tolerance."""
    problems = shortfalls(result, recipe)
    if problems:
        raise ValidationFailed(
            f"validation failed ({'; '.join(problems)}); see {record_path(recipe)}"
        )


def render(record: dict[str, Any]) -> str:
    if record.get("inputs") == "random":
        lines = [f"{'bucket':<14} {'max |diff|':>10} {'relative':>9} {'slices':>9}"]
        for b in record["buckets"]:
            slices = b["batch_slices_max_abs_diff"]
            lines.append(
                f"{b['bucket']:<14} {b['worst_abs_diff']:>10.2e} "
                f"{max(b['max_rel_diff'].values()):>9.2e} "
                f"{'-' if slices is None else f'{slices:.2e}':>9}"
            )
        lines.append(
            f"({record['buckets'][0]['runs']} seeded inputs in {record['range']}, seed "
            f"{record['seed']}, onnxruntime {record['onnxruntime_version']} CPU)"
        )
        return "\n".join(lines)
    lines = [f"{'bucket':<9} {'max |diff|':>10} {'faces src':>9} {'faces bkt':>9} {'min IoU':>8}"]
    for b in record["buckets"]:
        lines.append(
            f"{b['bucket']:<9} {b['worst_abs_diff']:>10.2e} {b['faces_source']:>9} "
            f"{b['faces_bucket']:>9} {b['min_iou']:>8.4f}"
        )
    lines.append(
        f"({len(record['images'])} photos, onnxruntime {record['onnxruntime_version']} CPU)"
    )
    return "\n".join(lines)
