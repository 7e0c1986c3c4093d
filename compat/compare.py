"""Two (N, 15) detection arrays side by side: matching, IoU, scores, landmarks, the primary face.

Pure numpy (no torch, no ORT), so ``make test`` checks it. Rows are the app's layout
``[x1, y1, x2, y2, score, lx1, ly1, ..., lx5, ly5]`` in frame pixels, best first.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

from retinaface_coreml.decode import pairwise_iou

# A box of ours counts as the app's face when they overlap at least this much.
MATCH_IOU = 0.5
# The gate on full-resolution results (resize 1.0, threshold 0.5): issue 8, deliverable 4.
MIN_IOU = 0.99
MAX_LANDMARK_PX = 1.0


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """The app's detections against ours on one input.

    ``ious`` has one entry per face of either side: the IoU of each matched pair, 0.0 for each
    face the other side lacks. Score and landmark figures cover matched pairs only (``None``
    when there are none). ``first_same`` says whether our ``dets[0]`` is the app's ``dets[0]``
    (``None`` when both are empty).
    """

    faces_app: int
    faces_ours: int
    ious: tuple[float, ...]
    score_diff_max: float | None
    landmark_px_max: float | None
    landmark_px_median: float | None
    first_same: bool | None

    @property
    def iou_min(self) -> float | None:
        return min(self.ious) if self.ious else None

    @property
    def iou_median(self) -> float | None:
        return statistics.median(self.ious) if self.ious else None


def match(app: np.ndarray, ours: np.ndarray) -> list[tuple[int, int, float]]:
    """Greedy one-to-one pairs ``(app row, our row, IoU)``: each app face in order takes the free
    face of ours it overlaps most, if that IoU is at least ``MATCH_IOU``."""
    table = pairwise_iou(app[:, :4], ours[:, :4])
    free = set(range(len(ours)))
    pairs = []
    for i, row in enumerate(table):
        candidates = sorted(free, key=lambda j: (-row[j], j))
        if candidates and row[candidates[0]] >= MATCH_IOU:
            j = candidates[0]
            free.remove(j)
            pairs.append((i, j, float(row[j])))
    return pairs


def compare(app: np.ndarray, ours: np.ndarray) -> Comparison:
    """Compare two detection arrays (N, 15) and (M, 15)."""
    app = np.asarray(app, dtype=np.float64).reshape(-1, 15)
    ours = np.asarray(ours, dtype=np.float64).reshape(-1, 15)
    pairs = match(app, ours)
    unmatched = len(app) + len(ours) - 2 * len(pairs)
    ious = tuple(iou for _, _, iou in pairs) + (0.0,) * unmatched
    if pairs:
        a = app[[i for i, _, _ in pairs]]
        b = ours[[j for _, j, _ in pairs]]
        score_diff = float(np.max(np.abs(a[:, 4] - b[:, 4])))
        distances = np.linalg.norm(
            a[:, 5:].reshape(-1, 5, 2) - b[:, 5:].reshape(-1, 5, 2), axis=2
        ).ravel()
        landmark_max, landmark_median = float(distances.max()), float(np.median(distances))
    else:
        score_diff = landmark_max = landmark_median = None
    if len(app) == 0 and len(ours) == 0:
        first_same = None
    else:
        first_same = any(i == 0 and j == 0 for i, j, _ in pairs)
    return Comparison(
        faces_app=len(app),
        faces_ours=len(ours),
        ious=ious,
        score_diff_max=score_diff,
        landmark_px_max=landmark_max,
        landmark_px_median=landmark_median,
        first_same=first_same,
    )


def gate_failures(comparison: Comparison) -> list[str]:
    """Why a full-resolution result fails the gate (empty when it passes)."""
    c = comparison
    failures = []
    if c.faces_app != c.faces_ours:
        failures.append(f"{c.faces_ours} faces, the app {c.faces_app}")
    if c.iou_min is not None and c.iou_min < MIN_IOU:
        failures.append(f"box IoU {c.iou_min:.3f} < {MIN_IOU}")
    if c.landmark_px_max is not None and c.landmark_px_max > MAX_LANDMARK_PX:
        failures.append(f"landmarks {c.landmark_px_max:.2f} px > {MAX_LANDMARK_PX} px off")
    if c.first_same is False:
        failures.append("dets[0] is another face")
    return failures
