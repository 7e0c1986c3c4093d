"""benchmarks/peers/app_style.py: the re-implemented app detector is faithful (anchors, boxes)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.common import SOURCE_MODEL, load_photos, match_boxes
from benchmarks.peers.app_style import AppStyleRetinaFace, prior_box
from retinaface_coreml.decode import prior_boxes
from tests.conftest import reference_boxes


@pytest.mark.parametrize(("height", "width"), [(1080, 1920), (333, 777)])
def test_prior_box_loops_match_the_runtime_anchors(height: int, width: int) -> None:
    loops = prior_box((height, width)) * np.array([width, height, width, height])
    runtime = prior_boxes(height, width, (8, 16, 32), ((16, 32), (64, 128), (256, 512)))
    np.testing.assert_allclose(loops, runtime, rtol=1e-5, atol=1e-3)


def test_app_style_finds_the_reference_faces() -> None:
    if not SOURCE_MODEL.exists():
        pytest.fail(f"{SOURCE_MODEL} is missing: run `make models` first")
    detector = AppStyleRetinaFace(SOURCE_MODEL)
    photo = "faceapi_sample2.jpg"
    dets, _ = detector.detect_faces(load_photos()[photo])
    assert dets.shape == (3, 15)
    assert match_boxes(dets[:, :4], reference_boxes()[photo]).matched == 3
