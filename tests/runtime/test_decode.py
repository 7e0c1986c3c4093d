"""decode: anchors, box and landmark regression, NMS, scaling (no ONNX Runtime)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from retinaface_coreml.decode import Detections, decode, nms, prior_boxes

STRIDES = (8, 16, 32)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
VARIANCE = (0.1, 0.2)


def test_prior_count_and_order() -> None:
    priors = prior_boxes(640, 640, STRIDES, MIN_SIZES)
    assert priors.shape == (2 * (80 * 80 + 40 * 40 + 20 * 20), 4) == (16800, 4)
    np.testing.assert_array_equal(priors[0], [4, 4, 16, 16])
    np.testing.assert_array_equal(priors[1], [4, 4, 32, 32])
    np.testing.assert_array_equal(priors[2], [12, 4, 16, 16])  # next column
    np.testing.assert_array_equal(priors[2 * 80], [4, 12, 16, 16])  # next row
    np.testing.assert_array_equal(priors[2 * 80 * 80], [8, 8, 64, 64])  # stride 16 starts
    np.testing.assert_array_equal(priors[-1], [624, 624, 512, 512])


def test_prior_count_for_non_square() -> None:
    assert prior_boxes(384, 640, STRIDES, MIN_SIZES).shape[0] == 2 * (48 * 80 + 24 * 40 + 12 * 20)


def _outputs(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    conf = np.zeros((n, 2), np.float32)
    conf[:, 0] = 1.0
    return np.zeros((n, 4), np.float32), conf, np.zeros((n, 10), np.float32)


def test_zero_offsets_decode_to_the_anchor() -> None:
    priors = prior_boxes(64, 64, STRIDES, MIN_SIZES)
    loc, conf, landmarks = _outputs(len(priors))
    conf[5] = (0.1, 0.9)
    found = decode(
        loc, conf, landmarks, priors, variance=VARIANCE, score_threshold=0.5, nms_threshold=0.4
    )
    cx, cy, w, h = priors[5]
    np.testing.assert_allclose(found.boxes, [[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]])
    np.testing.assert_allclose(found.scores, [0.9])
    np.testing.assert_allclose(found.landmarks, np.tile([cx, cy], (1, 5, 1)))


def test_offsets_use_the_variance() -> None:
    priors = prior_boxes(64, 64, STRIDES, MIN_SIZES)
    loc, conf, landmarks = _outputs(len(priors))
    conf[0] = (0.0, 1.0)
    # dx = 1 moves the centre by variance[0] * w; dw = log(2) / variance[1] doubles the width.
    loc[0] = (1.0, -1.0, math.log(2) / VARIANCE[1], 0.0)
    landmarks[0] = [1.0, 2.0] * 5
    found = decode(
        loc, conf, landmarks, priors, variance=VARIANCE, score_threshold=0.5, nms_threshold=0.4
    )
    cx, cy, w, h = priors[0]  # (4, 4, 16, 16)
    ncx, ncy = cx + 0.1 * w, cy - 0.1 * h
    np.testing.assert_allclose(
        found.boxes[0], [ncx - w, ncy - h / 2, ncx + w, ncy + h / 2], rtol=1e-6
    )
    np.testing.assert_allclose(found.landmarks[0], np.tile([cx + 0.1 * w, cy + 0.2 * h], (5, 1)))


def test_score_threshold_is_strict_and_nothing_found_is_empty() -> None:
    priors = prior_boxes(64, 64, STRIDES, MIN_SIZES)
    loc, conf, landmarks = _outputs(len(priors))
    conf[3] = (0.5, 0.5)
    found = decode(
        loc, conf, landmarks, priors, variance=VARIANCE, score_threshold=0.5, nms_threshold=0.4
    )
    assert len(found) == 0
    assert found.boxes.shape == (0, 4) and found.landmarks.shape == (0, 5, 2)


def test_nms_suppresses_overlaps_above_the_threshold_only() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 20]], np.float32)
    scores = np.array([0.8, 0.9, 0.7, 0.6], np.float32)
    # box 0 vs 1: IoU 9/11 > 0.4, suppressed; box 3 vs 1: IoU 90/210 = 0.43 > 0.4, suppressed.
    np.testing.assert_array_equal(nms(boxes, scores, 0.4), [1, 2])
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), [1, 2, 3])
    np.testing.assert_array_equal(nms(boxes, scores, 0.9), [1, 0, 2, 3])


def test_scaled_maps_network_pixels_to_frame_pixels() -> None:
    found = Detections(
        boxes=np.array([[10, 20, 30, 40]], np.float32),
        scores=np.array([0.9], np.float32),
        landmarks=np.array([[[10, 20]] * 5], np.float32),
    ).scaled(0.5, 0.25)
    np.testing.assert_allclose(found.boxes, [[20, 80, 60, 160]])
    np.testing.assert_allclose(found.landmarks[0, 0], [20, 80])
    assert found.scores.tolist() == pytest.approx([0.9])


def test_pairwise_iou_matches_the_scalar_definition() -> None:
    from retinaface_coreml.decode import pairwise_iou
    from tests.runtime.photos import iou

    rng = np.random.default_rng(7)
    corners = rng.uniform(0, 100, size=(9, 2))
    sizes = rng.uniform(0, 40, size=(9, 2))
    boxes = np.concatenate([corners, corners + sizes], axis=1)
    table = pairwise_iou(boxes[:4], boxes[4:])
    assert table.shape == (4, 5)
    for i in range(4):
        for j in range(5):
            assert table[i, j] == pytest.approx(iou(boxes[i], boxes[4 + j]))
    assert pairwise_iou(boxes[:1], boxes[:1])[0, 0] == pytest.approx(1.0)
    assert pairwise_iou(np.zeros((0, 4)), boxes).shape == (0, 9)


def test_equal_scores_keep_the_anchor_order_whatever_the_sort() -> None:
    # Five far-apart boxes, all scoring exactly 1.0 (a saturated softmax), one lower: the
    # ties come out in input (anchor) order, never in an order the sort algorithm picks.
    boxes = np.array([[i * 100, 0, i * 100 + 50, 50] for i in range(6)], dtype=np.float32)
    scores = np.array([1.0, 1.0, 0.5, 1.0, 1.0, 1.0], dtype=np.float32)
    assert nms(boxes, scores, 0.4).tolist() == [0, 1, 3, 4, 5, 2]
    # Of two overlapping boxes with equal scores, the earlier anchor is kept.
    pair = np.array([[0, 0, 50, 50], [2, 2, 52, 52]], dtype=np.float32)
    assert nms(pair, np.ones(2, np.float32), 0.4).tolist() == [0]
    many = np.repeat(boxes[:1], 300, axis=0) + np.arange(300, dtype=np.float32)[:, None] * 100
    assert nms(many, np.ones(300, np.float32), 0.4).tolist() == list(range(300))


def test_nms_offset_is_the_apps_plus_one_pixel_convention() -> None:
    # Two 10-px boxes overlapping by 4 px: IoU 40/160 = 0.25 measured as x2 - x1, but
    # 55/187 = 0.294 with the +1 of py_cpu_nms; a threshold between them tells them apart.
    boxes = np.array([[0, 0, 10, 10], [6, 0, 16, 10]], dtype=np.float32)
    scores = np.array([0.9, 0.8], dtype=np.float32)
    assert nms(boxes, scores, 0.27).tolist() == [0, 1]
    assert nms(boxes, scores, 0.27, offset=1.0).tolist() == [0]


def test_decode_scale_maps_to_frame_pixels_before_nms() -> None:
    priors = prior_boxes(64, 64, (8, 16, 32), ((16, 32), (64, 128), (256, 512)))
    loc = np.zeros((len(priors), 4), np.float32)
    conf = np.zeros((len(priors), 2), np.float32)
    conf[0, 1] = 0.9
    landmarks = np.zeros((len(priors), 10), np.float32)
    found = decode(
        loc, conf, landmarks, priors,
        variance=(0.1, 0.2), score_threshold=0.5, nms_threshold=0.4, scale=(0.5, 0.25),
    )  # fmt: skip
    np.testing.assert_allclose(found.boxes[0], [-8, -16, 24, 48])  # [-4, -4, 12, 12] / scale
    np.testing.assert_allclose(found.landmarks[0], [[8, 16]] * 5)
