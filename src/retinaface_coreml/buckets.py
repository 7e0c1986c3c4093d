"""Choose the shape bucket a frame runs in.

Two rules, one per caller:

* ``"auto"`` (FaceDetector's default, fast): among the small buckets, the closest aspect ratio
  in log space; the frame is shrunk to fit.
* ``"full"`` (full resolution, the app's classes): the smallest bucket that holds the frame,
  scaled by ``resize``, without shrinking it; when none does, the one that shrinks it least.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from retinaface_coreml.artifacts import BucketInfo, ModelRecord
from retinaface_coreml.preprocess import scaled_size

AUTO = "auto"
FULL = "full"


def aspect_distance(bucket: BucketInfo, height: int, width: int) -> float:
    """|log(bucket aspect) - log(frame aspect)|: 4:3 and 3:4 are equally far from square."""
    return abs(math.log(bucket.width / bucket.height) - math.log(width / height))


def _check(buckets: Sequence[BucketInfo], height: int, width: int) -> None:
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    if not buckets:
        raise ValueError("no buckets to choose from")


def closest_bucket(buckets: Sequence[BucketInfo], height: int, width: int) -> BucketInfo:
    """The bucket whose aspect ratio is closest to ``width / height``; ties go to the larger area.

    e.g. a 1920x1080 frame (16:9) picks ``384x640`` among 640x640, 480x640, 640x480, 384x640.
    """
    _check(buckets, height, width)
    # Round the distance so that float noise cannot beat the area tie-break.
    return min(
        buckets,
        key=lambda b: (round(aspect_distance(b, height, width), 9), -b.height * b.width, b.name),
    )


def exact_bucket(buckets: Sequence[BucketInfo], height: int, width: int) -> BucketInfo | None:
    """The bucket of exactly ``height`` x ``width`` (no padding, no rescaling), if any."""
    return next((b for b in buckets if (b.height, b.width) == (height, width)), None)


def fitting_bucket(buckets: Sequence[BucketInfo], height: int, width: int) -> BucketInfo:
    """The smallest bucket holding a ``height`` x ``width`` frame unshrunk, else the least shrink.

    e.g. 1080x1920 picks ``1080x1920`` (no rescaling, no padding); 540x960 (1080p at resize 0.5)
    picks ``720x1280``; 1537x1920, which no bucket holds, picks ``1080x1920`` (scale 0.70). Ties
    go to the closer aspect ratio, then the name.
    """
    _check(buckets, height, width)
    holding = [b for b in buckets if b.height >= height and b.width >= width]
    if holding:
        return min(
            holding,
            key=lambda b: (b.height * b.width, round(aspect_distance(b, height, width), 9), b.name),
        )
    return min(
        buckets,
        key=lambda b: (
            -round(min(b.height / height, b.width / width), 9),
            b.height * b.width,
            b.name,
        ),
    )


def fast_buckets(model: ModelRecord) -> tuple[BucketInfo, ...]:
    """The small buckets ``"auto"`` picks from (all of them in a model without full ones)."""
    return tuple(b for b in model.buckets if not b.full_resolution) or model.buckets


def resolve_bucket(
    model: ModelRecord, name: str, height: int, width: int, *, resize: float = 1.0
) -> BucketInfo:
    """``name`` among the model's buckets, or the one ``"auto"``/``"full"`` picks for the frame."""
    if name == AUTO:
        return closest_bucket(fast_buckets(model), height, width)
    if name == FULL:
        return fitting_bucket(model.buckets, *scaled_size(height, width, resize))
    return model.bucket(name)
