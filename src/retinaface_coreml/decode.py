"""RetinaFace output decoding: prior boxes, box and landmark regression, NMS (numpy only)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=32)
def prior_boxes(
    height: int, width: int, strides: tuple[int, ...], min_sizes: tuple[tuple[int, ...], ...]
) -> np.ndarray:
    """Anchors as (N, 4) float32 ``[cx, cy, w, h]`` in input pixels, in the heads' output order.

    For each stride: rows, then columns, then anchor sizes (biubug6/Pytorch_Retinaface's
    PriorBox), so 640x640 gives 16800 anchors.
    """
    levels = []
    for stride, sizes in zip(strides, min_sizes, strict=True):
        rows, cols = math.ceil(height / stride), math.ceil(width / stride)
        cy, cx = np.meshgrid(
            (np.arange(rows) + 0.5) * stride, (np.arange(cols) + 0.5) * stride, indexing="ij"
        )
        level = np.empty((rows, cols, len(sizes), 4), dtype=np.float32)
        level[..., 0] = cx[..., None]
        level[..., 1] = cy[..., None]
        level[..., 2] = np.asarray(sizes, dtype=np.float32)
        level[..., 3] = np.asarray(sizes, dtype=np.float32)
        levels.append(level.reshape(-1, 4))
    priors = np.concatenate(levels)
    priors.setflags(write=False)
    return priors


@dataclass(frozen=True, kw_only=True)
class Detections:
    """Faces as arrays: boxes (K, 4) x1 y1 x2 y2, scores (K,), landmarks (K, 5, 2)."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def scaled(self, scale_x: float, scale_y: float) -> Detections:
        """Divide coordinates by the letterbox scale: network pixels to frame pixels."""
        return Detections(
            boxes=self.boxes / np.array([scale_x, scale_y, scale_x, scale_y], dtype=np.float32),
            scores=self.scores,
            landmarks=self.landmarks / np.array([scale_x, scale_y], dtype=np.float32),
        )


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), as (N, M)."""
    a, b = (
        np.asarray(a, dtype=np.float64).reshape(-1, 4),
        np.asarray(b, dtype=np.float64).reshape(-1, 4),
    )
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, *, offset: float = 0.0
) -> np.ndarray:
    """Greedy non-maximum suppression; indices of kept boxes, highest score first.

    Equal scores keep their input order (a stable sort): for decoded anchors, the one earlier
    in the network's output order comes first (finer stride, then top to bottom, left to
    right, smaller anchor), so the result never depends on the sort algorithm. ``offset=1``
    measures widths as ``x2 - x1 + 1``, the pixel convention of Fast R-CNN's ``py_cpu_nms``
    that the app's post-processing uses.
    """
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1 + offset, 0) * np.maximum(y2 - y1 + offset, 0)
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        w = np.clip(
            np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + offset, 0, None
        )
        h = np.clip(
            np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + offset, 0, None
        )
        inter = w * h
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def decode(
    loc: np.ndarray,
    conf: np.ndarray,
    landmarks: np.ndarray,
    priors: np.ndarray,
    *,
    variance: tuple[float, float],
    score_threshold: float,
    nms_threshold: float,
    scale: tuple[float, float] = (1.0, 1.0),
    nms_offset: float = 0.0,
) -> Detections:
    """Decode one image's raw outputs (N, 4), (N, 2), (N, 10) into faces, best first.

    Coordinates are input pixels divided by ``scale`` (x, y): frame pixels when ``scale`` is
    the letterbox's. NMS runs on those (``nms_offset``: see :func:`nms`). Only anchors scoring
    above ``score_threshold`` are decoded, so the cost follows the number of candidates, not
    the 16800 anchors.
    """
    scores = conf[:, 1]
    (candidates,) = np.nonzero(scores > score_threshold)
    p = priors[candidates]
    offsets = loc[candidates]
    centers = p[:, :2] + offsets[:, :2] * variance[0] * p[:, 2:]
    sizes = p[:, 2:] * np.exp(offsets[:, 2:] * variance[1])
    boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1)
    points = landmarks[candidates].reshape(-1, 5, 2) * variance[0] * p[:, None, 2:]
    points += p[:, None, :2]
    if scale != (1.0, 1.0):
        boxes /= np.array([scale[0], scale[1], scale[0], scale[1]], dtype=boxes.dtype)
        points /= np.array(scale, dtype=points.dtype)
    kept = nms(boxes, scores[candidates], nms_threshold, offset=nms_offset)
    return Detections(
        boxes=boxes[kept].astype(np.float32, copy=False),
        scores=scores[candidates][kept].astype(np.float32, copy=False),
        landmarks=points[kept].astype(np.float32, copy=False),
    )
