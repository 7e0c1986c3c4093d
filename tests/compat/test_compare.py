"""compat/compare.py: matching the app's detections to ours, and the full-resolution gate."""

from __future__ import annotations

import numpy as np
import pytest

from compat.compare import MIN_IOU, compare, gate_failures, match


def face(x1: float, y1: float, size: float, score: float) -> list[float]:
    """One (15,) row: a square box and five landmarks inside it."""
    points = [
        (x1 + size * fx, y1 + size * fy)
        for fx, fy in ((0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.35, 0.8), (0.65, 0.8))
    ]
    return [x1, y1, x1 + size, y1 + size, score, *(c for p in points for c in p)]


def rows(*faces: list[float]) -> np.ndarray:
    return np.array(faces, dtype=np.float32).reshape(-1, 15)


APP = rows(face(100, 100, 100, 0.99), face(400, 120, 80, 0.95), face(700, 90, 60, 0.7))


def test_identical_results_pass_the_gate() -> None:
    c = compare(APP, APP.copy())
    assert (c.faces_app, c.faces_ours) == (3, 3)
    assert c.ious == pytest.approx((1.0, 1.0, 1.0))
    assert c.score_diff_max == 0.0
    assert c.landmark_px_max == 0.0
    assert c.first_same is True
    assert gate_failures(c) == []


def test_iou_is_measured_and_gated_at_099() -> None:
    ours = APP.copy()
    ours[0, 2] += 1.0  # 100x100 -> 101x100: IoU 100/101 = 0.990, just passes
    assert compare(APP, ours).iou_min == pytest.approx(100 / 101, rel=1e-6)
    assert gate_failures(compare(APP, ours)) == []
    ours[0, 2] += 1.0  # 102x100: IoU 100/102 = 0.980
    c = compare(APP, ours)
    assert c.iou_min == pytest.approx(100 / 102, rel=1e-6)
    assert c.iou_min < MIN_IOU
    assert gate_failures(c) == [f"box IoU {100 / 102:.3f} < {MIN_IOU}"]


def test_landmarks_off_by_a_3_4_5_triangle_are_5_px() -> None:
    ours = APP.copy()
    ours[1, 5:7] += (3.0, 4.0)
    c = compare(APP, ours)
    assert c.landmark_px_max == pytest.approx(5.0)
    assert c.landmark_px_median == 0.0
    assert gate_failures(c) == ["landmarks 5.00 px > 1.0 px off"]


def test_a_missing_face_counts_as_iou_zero_and_a_count_failure() -> None:
    c = compare(APP, APP[:2])
    assert (c.faces_app, c.faces_ours) == (3, 2)
    assert sorted(c.ious) == pytest.approx([0.0, 1.0, 1.0])
    assert c.iou_median == pytest.approx(1.0)
    failures = gate_failures(c)
    assert failures[0] == "2 faces, the app 3"
    assert failures[1].startswith("box IoU 0.000")


def test_another_primary_face_is_reported() -> None:
    ours = APP[[1, 0, 2]]
    c = compare(APP, ours)
    assert c.ious == pytest.approx((1.0, 1.0, 1.0))
    assert c.first_same is False
    assert gate_failures(c) == ["dets[0] is another face"]


def test_each_of_our_faces_matches_at_most_once() -> None:
    app = rows(face(100, 100, 100, 0.9), face(102, 100, 100, 0.8))
    ours = rows(face(101, 100, 100, 0.9))
    pairs = match(app.astype(np.float64), ours.astype(np.float64))
    assert [(i, j) for i, j, _ in pairs] == [(0, 0)]
    assert compare(app, ours).ious[-1] == 0.0


def test_two_empty_results_agree() -> None:
    c = compare(np.zeros((0, 15), np.float32), np.zeros((0, 15), np.float32))
    assert c.ious == ()
    assert c.iou_min is None and c.score_diff_max is None and c.first_same is None
    assert gate_failures(c) == []


def test_a_face_only_we_find_fails() -> None:
    c = compare(np.zeros((0, 15), np.float32), APP[:1])
    assert c.first_same is False
    assert c.ious == (0.0,)
    assert "1 faces, the app 0" in gate_failures(c)
