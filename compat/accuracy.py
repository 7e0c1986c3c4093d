"""Numbers: the app's detections against ours on every input, resize and threshold.

The app runs as its callers run it: ``ONNXRetinaFaceDetector(path, confidence_threshold=t)``
on the source weights, ``detect_faces(frame)``. At ``resize != 1`` the app's own call raises (its
prior boxes are built for the unresized frame), so its reference is what that code means: the
frame resized exactly as the app resizes it (float32, ``cv2.INTER_LINEAR``), detected at 1.0,
and coordinates divided by ``resize`` into original-frame pixels.

Ours runs twice: the drop-in class given the same path (the full-resolution path), and
``FaceDetector`` at its fast default (small buckets; it has no ``resize``). Gated: the drop-in
class at resize 1.0 and threshold 0.5, on every input.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np

from compat.api import first_line
from compat.compare import Comparison, compare, gate_failures

THRESHOLDS = (0.5, 0.02)
RESIZES = (1.0, 0.5)
GATED_THRESHOLD = 0.5
NMS_THRESHOLD = 0.4
DROP_IN = "ONNXRetinaFaceDetector(path)"
FAST = "FaceDetector() fast default"


@dataclass(frozen=True, kw_only=True)
class NumbersRow:
    """One input under one setting: the comparison, or the error our side raised."""

    image: str
    size: str
    ours: str
    resize: float
    threshold: float
    comparison: Comparison | None
    error: str | None = None

    @property
    def gated(self) -> bool:
        """The drop-in class at full resolution (resize 1.0) and the gated threshold."""
        return self.ours == DROP_IN and self.resize == 1.0 and self.threshold == GATED_THRESHOLD

    @property
    def failures(self) -> list[str]:
        """Gate failures of a gated row (an error counts as one)."""
        if not self.gated:
            return []
        if self.comparison is None:
            return [f"error: {self.error}"]
        return gate_failures(self.comparison)


def app_reference(detector: Any, image: np.ndarray, resize: float) -> np.ndarray:
    """The app's detections in original-frame pixels, at what ``detect_faces(image, resize)``
    means (see the module docstring)."""
    if resize == 1.0:
        return detector.detect_faces(image)[0]
    scaled = cv2.resize(
        np.float32(image), None, fx=resize, fy=resize, interpolation=cv2.INTER_LINEAR
    )
    dets = np.array(detector.detect_faces(scaled, 1.0)[0], dtype=np.float32)
    dets[:, :4] /= resize
    dets[:, 5:] /= resize
    return dets


def face_rows(faces: list[Any]) -> np.ndarray:
    """``FaceDetector.detect``'s faces as the app's (N, 15) rows."""
    rows = [[*f.box, f.score, *np.asarray(f.landmarks).ravel()] for f in faces]
    return np.array(rows, dtype=np.float32).reshape(-1, 15)


def _quiet(make: Callable[[], Any]) -> Any:
    with contextlib.redirect_stdout(io.StringIO()):
        return make()


def measure(
    app: ModuleType,
    ours: ModuleType,
    model: Path,
    images: dict[str, np.ndarray],
) -> list[NumbersRow]:
    """Every (threshold, image, resize) for the drop-in class, plus the fast default at 1.0."""
    rows: list[NumbersRow] = []
    for threshold in THRESHOLDS:
        app_detector = _quiet(
            lambda t=threshold: app.ONNXRetinaFaceDetector(str(model), confidence_threshold=t)
        )
        contenders: dict[str, Callable[[np.ndarray, float], np.ndarray] | str] = {}
        try:
            drop_in = _quiet(
                lambda t=threshold: ours.ONNXRetinaFaceDetector(str(model), confidence_threshold=t)
            )
            contenders[DROP_IN] = lambda image, r, d=drop_in: d.detect_faces(image, r)[0]
        except Exception as exc:  # reported in every row of this threshold
            contenders[DROP_IN] = first_line(exc)
        try:
            fast = ours.FaceDetector(
                backend="cpu", score_threshold=threshold, nms_threshold=NMS_THRESHOLD
            )
            contenders[FAST] = lambda image, r, d=fast: face_rows(d.detect(image))
        except Exception as exc:
            contenders[FAST] = first_line(exc)
        for name, image in images.items():
            size = f"{image.shape[1]}x{image.shape[0]}"
            for resize in RESIZES:
                reference = app_reference(app_detector, image, resize)
                for label, run in contenders.items():
                    if label == FAST and resize != 1.0:
                        continue
                    comparison, error = None, run if isinstance(run, str) else None
                    if error is None:
                        try:
                            comparison = compare(reference, run(image, resize))
                        except Exception as exc:  # one row per failure, never a crash
                            error = first_line(exc)
                    rows.append(
                        NumbersRow(
                            image=name,
                            size=size,
                            ours=label,
                            resize=resize,
                            threshold=threshold,
                            comparison=comparison,
                            error=error,
                        )
                    )
    return rows
