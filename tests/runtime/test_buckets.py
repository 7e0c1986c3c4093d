"""buckets: 'auto' (closest aspect, fast buckets), 'full' (smallest holding the frame), names."""

from __future__ import annotations

import pytest

from retinaface_coreml.artifacts import BucketInfo, load_manifest
from retinaface_coreml.buckets import closest_bucket, fast_buckets, fitting_bucket, resolve_bucket
from retinaface_coreml.errors import UnknownBucketError


def _bucket(height: int, width: int) -> BucketInfo:
    name = f"{height}x{width}"
    return BucketInfo(
        name=name,
        model="retinaface",
        inputs={"input": (1, 3, height, width)},
        file=f"{name}.onnx",
        coreml_cache_key="k",
    )


SHIPPED = [
    _bucket(640, 640),
    _bucket(480, 640),
    _bucket(640, 480),
    _bucket(384, 640),
    _bucket(640, 384),
]


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (1080, 1920, "384x640"),  # 16:9
        (1920, 1080, "640x384"),
        (480, 640, "480x640"),  # 4:3
        (640, 480, "640x480"),
        (512, 512, "640x640"),
        (1280, 1920, "384x640"),  # 3:2: log distance 0.105 to 5:3, 0.118 to 4:3
        (1367, 1920, "480x640"),
        (600, 512, "640x480"),  # portrait 0.853: 0.129 to 3:4, 0.159 to square
    ],
)
def test_closest_bucket(height: int, width: int, expected: str) -> None:
    assert closest_bucket(SHIPPED, height, width).name == expected
    assert closest_bucket(list(reversed(SHIPPED)), height, width).name == expected


def test_log_distance_is_symmetric_so_mirrored_buckets_tie_and_larger_area_wins() -> None:
    # 4:3 and 3:4 are equally far from a square frame in log space; 720x960 has more pixels.
    buckets = [_bucket(480, 640), _bucket(960, 720)]
    assert closest_bucket(buckets, 100, 100).name == "960x720"
    assert closest_bucket(list(reversed(buckets)), 100, 100).name == "960x720"


def test_same_aspect_prefers_the_larger_area() -> None:
    buckets = [_bucket(320, 320), _bucket(640, 640), _bucket(160, 160)]
    assert closest_bucket(buckets, 50, 50).name == "640x640"


def test_bad_frame_size() -> None:
    with pytest.raises(ValueError, match="positive"):
        closest_bucket(SHIPPED, 0, 10)


def test_resolve_by_name_auto_and_unknown(package_models) -> None:
    manifest = load_manifest(package_models).detector_model()
    assert resolve_bucket(manifest, "640x384", 1080, 1920).name == "640x384"
    assert resolve_bucket(manifest, "auto", 1080, 1920).name == "384x640"
    with pytest.raises(UnknownBucketError, match=r"'1x1'.*640x640.*'auto'"):
        resolve_bucket(manifest, "1x1", 1080, 1920)


def _full(height: int, width: int) -> BucketInfo:
    return BucketInfo(
        name=f"{height}x{width}",
        model="retinaface",
        inputs={"input": (1, 3, height, width)},
        file=f"{height}x{width}.onnx",
        coreml_cache_key="k",
        full_resolution=True,
    )


WITH_FULL = [*SHIPPED, _full(1080, 1920), _full(1920, 1080), _full(720, 1280), _full(1280, 720)]


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (1080, 1920, "1080x1920"),  # its own bucket: no rescaling, no padding
        (1920, 1080, "1920x1080"),
        (720, 1280, "720x1280"),
        (1280, 720, "1280x720"),
        (540, 960, "720x1280"),  # the smallest that holds it
        (480, 640, "480x640"),
        (300, 451, "384x640"),
        (700, 700, "1280x720"),  # ties 720x1280 in area and aspect: the name decides
        (1537, 1920, "1080x1920"),  # held by none: the least shrink (0.70 vs 0.56)
        (3000, 1000, "1920x1080"),
    ],
)
def test_fitting_bucket_holds_the_frame_unshrunk_else_shrinks_it_least(
    height: int, width: int, expected: str
) -> None:
    assert fitting_bucket(WITH_FULL, height, width).name == expected
    assert fitting_bucket(list(reversed(WITH_FULL)), height, width).name == expected


def test_resolve_full_scales_by_resize_and_auto_keeps_to_the_fast_buckets(package_models) -> None:
    manifest = load_manifest(package_models).detector_model()
    assert {b.name for b in fast_buckets(manifest)} == {b.name for b in SHIPPED}
    assert resolve_bucket(manifest, "full", 1080, 1920).name == "1080x1920"
    assert resolve_bucket(manifest, "full", 1080, 1920, resize=0.5).name == "720x1280"
    assert resolve_bucket(manifest, "full", 2160, 3840, resize=0.5).name == "1080x1920"
    for height, width in [(1080, 1920), (1920, 1080), (720, 1280), (4000, 4000)]:
        assert not resolve_bucket(manifest, "auto", height, width).full_resolution
