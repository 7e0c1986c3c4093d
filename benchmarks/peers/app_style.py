"""The app's current detector style, re-implemented faithfully for the speed comparison.

What a typical app built on biubug6/Pytorch_Retinaface's ``detect.py`` does with the exported
ONNX: the dynamic-shape model on ONNX Runtime's CPU EP at the frame's full resolution, and per
frame, in Python: ``PriorBox.forward`` (``itertools.product`` loops building a list),
``decode``/``decode_landm`` over every anchor, the score filter, top-k, and Fast R-CNN's
``py_cpu_nms``. Nothing is cached between frames, as in ``detect.py``. The interface is the
app's: ``detect_faces(img, resize=1.0) -> (dets (N, 15), img)``.
"""

from __future__ import annotations

from itertools import product
from math import ceil
from pathlib import Path

import cv2
import numpy as np
import onnxruntime

# biubug6's cfg_mnet and detect.py defaults (top_k, keep_top_k); thresholds as the app sets them.
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
STEPS = (8, 16, 32)
VARIANCE = (0.1, 0.2)
MEAN_BGR = (104, 117, 123)
TOP_K = 5000
KEEP_TOP_K = 750


def prior_box(image_size: tuple[int, int]) -> np.ndarray:
    """biubug6's ``PriorBox(cfg_mnet, image_size).forward()``: (N, 4) cx, cy, w, h in [0, 1]."""
    feature_maps = [[ceil(image_size[0] / step), ceil(image_size[1] / step)] for step in STEPS]
    anchors: list[float] = []
    for k, f in enumerate(feature_maps):
        min_sizes = MIN_SIZES[k]
        for i, j in product(range(f[0]), range(f[1])):
            for min_size in min_sizes:
                s_kx = min_size / image_size[1]
                s_ky = min_size / image_size[0]
                dense_cx = [x * STEPS[k] / image_size[1] for x in [j + 0.5]]
                dense_cy = [y * STEPS[k] / image_size[0] for y in [i + 0.5]]
                for cy, cx in product(dense_cy, dense_cx):
                    anchors += [cx, cy, s_kx, s_ky]
    return np.array(anchors, dtype=np.float32).reshape(-1, 4)


def decode(loc: np.ndarray, priors: np.ndarray, variances: tuple[float, float]) -> np.ndarray:
    """biubug6's ``box_utils.decode``: (N, 4) regressions to x1, y1, x2, y2 in [0, 1]."""
    boxes = np.concatenate(
        (
            priors[:, :2] + loc[:, :2] * variances[0] * priors[:, 2:],
            priors[:, 2:] * np.exp(loc[:, 2:] * variances[1]),
        ),
        1,
    )
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def decode_landm(pre: np.ndarray, priors: np.ndarray, variances: tuple[float, float]) -> np.ndarray:
    """biubug6's ``box_utils.decode_landm``: (N, 10) regressions to five points in [0, 1]."""
    return np.concatenate(
        [
            priors[:, :2] + pre[:, 2 * p : 2 * p + 2] * variances[0] * priors[:, 2:]
            for p in range(5)
        ],
        axis=1,
    )


def py_cpu_nms(dets: np.ndarray, thresh: float) -> list[int]:
    """Fast R-CNN's ``py_cpu_nms`` (as vendored by biubug6), +1 pixel convention included."""
    x1, y1, x2, y2, scores = dets[:, 0], dets[:, 1], dets[:, 2], dets[:, 3], dets[:, 4]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        w = np.maximum(0.0, xx2 - xx1 + 1)
        h = np.maximum(0.0, yy2 - yy1 + 1)
        inter = w * h
        ovr = inter / (areas[i] + areas[order[1:]] - inter)
        inds = np.where(ovr <= thresh)[0]
        order = order[inds + 1]
    return keep


class AppStyleRetinaFace:
    """The dynamic-shape RetinaFace ONNX on ORT CPU at full resolution, post-processed per frame."""

    def __init__(
        self,
        onnx_model_path: str | Path,
        confidence_threshold: float = 0.5,
        nms_threshold: float = 0.4,
    ) -> None:
        self.confidence_threshold = confidence_threshold
        self.nms_threshold = nms_threshold
        self.session = onnxruntime.InferenceSession(
            str(onnx_model_path), providers=["CPUExecutionProvider"]
        )

    def detect_faces(self, img: np.ndarray, resize: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """(N, 15) float32 rows ``[x1, y1, x2, y2, score, 10 landmark coords]`` and the image."""
        if resize != 1.0:
            img = cv2.resize(img, None, None, fx=resize, fy=resize, interpolation=cv2.INTER_LINEAR)
        tensor = np.float32(img)
        im_height, im_width, _ = tensor.shape
        scale = np.array([im_width, im_height, im_width, im_height], dtype=np.float32)
        tensor -= MEAN_BGR
        tensor = tensor.transpose(2, 0, 1)[np.newaxis]
        loc, conf, landms = self.session.run(None, {"input": np.ascontiguousarray(tensor)})

        priors = prior_box((im_height, im_width))
        boxes = decode(loc[0], priors, VARIANCE) * scale
        scores = conf[0][:, 1]
        landmarks = decode_landm(landms[0], priors, VARIANCE) * np.tile(scale[:2], 5)

        inds = np.where(scores > self.confidence_threshold)[0]
        boxes, landmarks, scores = boxes[inds], landmarks[inds], scores[inds]
        order = scores.argsort()[::-1][:TOP_K]
        boxes, landmarks, scores = boxes[order], landmarks[order], scores[order]

        dets = np.hstack((boxes, scores[:, np.newaxis])).astype(np.float32, copy=False)
        keep = py_cpu_nms(dets, self.nms_threshold)
        dets, landmarks = dets[keep, :][:KEEP_TOP_K], landmarks[keep][:KEEP_TOP_K]
        return np.concatenate((dets, landmarks), axis=1).astype(np.float32, copy=False), img
