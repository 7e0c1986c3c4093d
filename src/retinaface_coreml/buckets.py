"""Choose the shape bucket a frame runs in: the closest aspect ratio, in log space."""

from __future__ import annotations

import math
from collections.abc import Sequence

from retinaface_coreml.artifacts import BucketInfo, Manifest

AUTO = "auto"


def aspect_distance(bucket: BucketInfo, height: int, width: int) -> float:
    """|log(bucket aspect) - log(frame aspect)|: 4:3 and 3:4 are equally far from square."""
    return abs(math.log(bucket.width / bucket.height) - math.log(width / height))


def closest_bucket(buckets: Sequence[BucketInfo], height: int, width: int) -> BucketInfo:
    """The bucket whose aspect ratio is closest to ``width / height``; ties go to the larger area.

    e.g. a 1920x1080 frame (16:9) picks ``384x640`` among 640x640, 480x640, 640x480, 384x640.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    if not buckets:
        raise ValueError("no buckets to choose from")
    # Round the distance so that float noise cannot beat the area tie-break.
    return min(
        buckets,
        key=lambda b: (round(aspect_distance(b, height, width), 9), -b.height * b.width, b.name),
    )


def resolve_bucket(manifest: Manifest, name: str, height: int, width: int) -> BucketInfo:
    """``name`` from the manifest, or the closest bucket when ``name`` is ``"auto"``."""
    if name == AUTO:
        return closest_bucket(manifest.buckets, height, width)
    return manifest.bucket(name)
