"""Test helpers: read a photo from tests/data/faces, match boxes by IoU."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from tests.conftest import FACES_DIR


def load_photo(name: str, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    image = cv2.imread(str(FACES_DIR / name), flags)
    if image is None:
        raise FileNotFoundError(FACES_DIR / name)
    return image


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def unmatched(found: Sequence[Sequence[float]], expected: Sequence[Sequence[float]]) -> list:
    """Expected boxes with no found box at IoU >= 0.5 (each found box matches at most once)."""
    free = list(found)
    missing = []
    for box in expected:
        scores = [iou(box, f) for f in free]
        if scores and max(scores) >= 0.5:
            free.pop(int(np.argmax(scores)))
        else:
            missing.append(box)
    return missing
