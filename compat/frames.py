"""The harness's inputs: the ten photos and two video frames made from them, deterministically."""

from __future__ import annotations

import cv2
import numpy as np

from benchmarks.common import FRAME_1080P, frame_1080p, load_photos

FRAME_720P = "1280x720 frame"


def frame_720p(frame_1080: np.ndarray) -> np.ndarray:
    """The 1080p frame shrunk to 1280x720 (INTER_AREA: the same pixels on every run)."""
    return cv2.resize(frame_1080, (1280, 720), interpolation=cv2.INTER_AREA)


def inputs() -> dict[str, np.ndarray]:
    """Name to BGR uint8 image: the ten photos (SOURCES.md order), then the 1080p and 720p
    frames (the 1080p one is faceapi_sample1.jpg's top 1080 rows, see benchmarks/common.py)."""
    images = load_photos()
    hd = frame_1080p(images)
    images[FRAME_1080P] = hd
    images[FRAME_720P] = frame_720p(hd)
    return images


def wide_photos(images: dict[str, np.ndarray]) -> list[str]:
    """The 1920-wide photos (the six group photos), in order."""
    return [
        name for name, image in images.items() if name.endswith(".jpg") and image.shape[1] == 1920
    ]
