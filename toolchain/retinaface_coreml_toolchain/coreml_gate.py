"""The CoreML numerical gate of ``precompile``: a compiled entry's outputs against the CPU's.

After an entry is compiled (and proved a cache hit), its session runs the recipe's validation
inputs, and the bucket model runs them on ORT's CPU EP. A ``[detector]`` recipe (RetinaFace)
runs the validation photos and compares decoded faces (``coreml_numerics.compare_faces``); any
other model runs its seeded random inputs (``validate.random_feed``) and compares raw outputs
within ``rtol``. An entry out of tolerance is not shipped; the precompile record says why.

The tolerances are the recipe's ``coreml_tolerance`` (``[coreml_tolerance]``, read by
``recipe.load_recipe``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from retinaface_coreml_toolchain.coreml_numerics import (
    compare_faces,
    face_shortfalls,
    relative_diff,
    relative_shortfalls,
)
from retinaface_coreml_toolchain.recipe import Bucket, Recipe


@dataclass(frozen=True, kw_only=True)
class EntryCheck:
    """One bucket's verdict, e.g. passed, figures ``{"min_iou": 0.9586, ...}``."""

    bucket: str
    passed: bool
    reason: str
    figures: dict[str, Any]


EntryGate = Callable[[Bucket, Any], EntryCheck]
"""Checks a bucket's compiled CoreML session (anything with ORT's ``run``)."""


def gate_for(recipe: Recipe) -> EntryGate:
    """Faces for a ``[detector]`` recipe, relative outputs for any other model."""
    return retinaface_gate(recipe) if recipe.detector is not None else outputs_gate(recipe)


def compare_runs(
    cpu: Any, coreml: Any, feeds: Sequence[Mapping[str, np.ndarray]], outputs: Sequence[str]
) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]], dict[str, float]]:
    """Both sessions on every feed: their outputs, and each output's ``relative_diff``."""
    want = [cpu.run(list(outputs), dict(feed)) for feed in feeds]
    got = [coreml.run(list(outputs), dict(feed)) for feed in feeds]
    figures = {
        name: float(f"{relative_diff([w[k] for w in want], [g[k] for g in got]):.3e}")
        for k, name in enumerate(outputs)
    }
    return want, got, figures


def check_outputs(
    bucket: str, cpu: Any, coreml: Any, feeds, outputs: Sequence[str], rtol: float
) -> EntryCheck:
    """Any model: every output within ``rtol`` of the CPU's."""
    _, _, figures = compare_runs(cpu, coreml, feeds, outputs)
    problems = relative_shortfalls(figures, rtol)
    return EntryCheck(
        bucket=bucket,
        passed=not problems,
        reason="; ".join(problems),
        figures={"max_rel_diff": max(figures.values(), default=0.0), "relative_diff": figures},
    )


def outputs_gate(recipe: Recipe) -> EntryGate:
    """Any model: the bucket's seeded validation inputs, every output within ``rtol``."""
    from retinaface_coreml_toolchain.validate import _session, validation_feeds

    def check(bucket: Bucket, session: Any) -> EntryCheck:
        cpu = _session(str(recipe.bucket_path(bucket)))
        index = recipe.buckets.index(bucket)
        feeds = validation_feeds(recipe, index, bucket, cpu)
        outputs = [o.name for o in cpu.get_outputs()]
        return check_outputs(
            bucket.name, cpu, session, feeds, outputs, recipe.coreml_tolerance.rtol
        )

    return check


def retinaface_gate(recipe: Recipe) -> EntryGate:
    """The gate for RetinaFace's buckets: the validation photos, faces compared."""
    from retinaface_coreml.decode import decode, prior_boxes
    from retinaface_coreml.preprocess import letterbox
    from retinaface_coreml_toolchain.validate import _session, cover, load_images

    tolerance = recipe.coreml_tolerance
    images = load_images(recipe.validate.images)
    spec = recipe.detector

    def check(bucket: Bucket, session: Any) -> EntryCheck:
        feeds = []
        for _, image in images:
            if bucket.full_resolution:
                image = cover(image, bucket.height, bucket.width)
            tensor, _ = letterbox(image, bucket.height, bucket.width, spec.mean_bgr)
            feeds.append({spec.input: tensor})
        cpu = _session(str(recipe.bucket_path(bucket)))
        want, got, relative = compare_runs(cpu, session, feeds, spec.outputs)
        priors = prior_boxes(bucket.height, bucket.width, spec.strides, spec.min_sizes)

        def faces(outs: list[np.ndarray]):
            return decode(
                *(o[0] for o in outs), priors,
                variance=spec.variance,
                score_threshold=recipe.validate.score_threshold,
                nms_threshold=recipe.validate.nms_threshold,
            )  # fmt: skip

        figures = compare_faces(
            [faces(w) for w in want],
            [faces(g) for g in got],
            score_threshold=recipe.validate.score_threshold,
            tolerance=tolerance.faces,
        )
        problems = face_shortfalls(figures, tolerance.faces)
        return EntryCheck(
            bucket=bucket.name,
            passed=not problems,
            reason="; ".join(problems),
            figures={
                **asdict(figures),
                "images": len(feeds),
                "max_rel_diff": max(relative.values(), default=0.0),
                "relative_diff": relative,
            },
        )

    return check
