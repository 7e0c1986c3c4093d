"""Drop-in replacement for the app's ``ONNXRetinaFaceDetector`` (same constructor, same arrays).

Swap the import and keep the calling code::

    from retinaface_coreml import ONNXRetinaFaceDetector
    detector = ONNXRetinaFaceDetector()
    detections, img = detector.detect_faces(frame)   # (N, 15) float32, frame
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import cv2
import numpy as np
import onnxruntime

from retinaface_coreml.artifacts import load_manifest
from retinaface_coreml.backends import CPU_EP, Runner, SessionRunner
from retinaface_coreml.decode import Detections
from retinaface_coreml.detector import FaceDetector, check_thresholds, run_network
from retinaface_coreml.errors import ArtifactError
from retinaface_coreml.preprocess import check_image

log = logging.getLogger(__name__)


def to_rows(detections: Detections) -> np.ndarray:
    """(N, 15) float32 rows ``[x1, y1, x2, y2, score, lx1, ly1, ..., lx5, ly5]``."""
    n = len(detections)
    return np.concatenate(
        [
            detections.boxes.reshape(n, 4),
            detections.scores.reshape(n, 1),
            detections.landmarks.reshape(n, 10),
        ],
        axis=1,
    ).astype(np.float32, copy=False)


class ONNXRetinaFaceDetector:
    """The old class's interface on top of :class:`FaceDetector`.

    ``onnx_model_path=None`` (the default) uses the packaged fixed-shape buckets, on CoreML when
    available and ``use_coreml`` is true, else on CPU. A path instead loads that RetinaFace ONNX
    (input ``input``; outputs ``loc``, ``conf``, ``landmarks``) on the CPU with dynamic shapes at
    the frame's full resolution, as the old class did: slower, no bucket, no CoreML, no manifest
    check. ``confidence_threshold`` and ``nms_threshold`` are in [0, 1].
    """

    def __init__(
        self,
        onnx_model_path: str | Path | None = None,
        use_coreml: bool = True,
        confidence_threshold: float = 0.5,
        nms_threshold: float = 0.4,
    ) -> None:
        check_thresholds(confidence_threshold, nms_threshold)
        self.confidence_threshold = float(confidence_threshold)
        self.nms_threshold = float(nms_threshold)
        self.onnx_model_path = None if onnx_model_path is None else Path(onnx_model_path)
        self._detector: FaceDetector | None = None
        self._runner: Runner | None = None
        if self.onnx_model_path is None:
            self._detector = FaceDetector(
                backend="auto" if use_coreml else "cpu",
                score_threshold=self.confidence_threshold,
                nms_threshold=self.nms_threshold,
            )
            self._model = self._detector.manifest.model
        else:
            self._model = load_manifest().model
            self._runner = self._open_custom(self.onnx_model_path)

    @property
    def backend(self) -> str | None:
        """What ran last: ``"cpu"`` or ``"coreml"`` (``None`` before the first packaged run)."""
        if self._detector is not None:
            return self._detector.backend
        return "cpu"

    def detect_faces(self, img: np.ndarray, resize: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Detect faces; return ``(detections, img)`` with ``img`` scaled by ``resize``.

        As in the old API, the frame is first resized by ``resize`` (bilinear) and the
        coordinates are in the pixels of that returned image; ``resize=1.0`` returns ``img``
        itself. ``detections`` is (N, 15) float32, best score first; (0, 15) when none.
        """
        if not isinstance(resize, (int, float)) or isinstance(resize, bool) or not resize > 0:
            raise ValueError(f"resize must be a number > 0, got {resize!r}")
        img = check_image(img)
        if resize != 1.0:
            height, width = img.shape[:2]
            size = (max(1, round(width * resize)), max(1, round(height * resize)))
            img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
        if self._detector is not None:
            return to_rows(self._detector.detect_arrays(img)), img
        return to_rows(self._detect_custom(img)), img

    def _open_custom(self, path: Path) -> Runner:
        log.info(
            "%s: running this model on the CPU at full resolution with dynamic shapes; "
            "omit onnx_model_path to use the packaged fixed-shape models (faster, CoreML on macOS)",
            path,
        )
        try:
            session = onnxruntime.InferenceSession(str(path), providers=[CPU_EP])
        except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/NoSuchFile types
            raise ArtifactError(
                f"{path}: cannot load as an ONNX model ({str(exc).splitlines()[0]}); "
                "pass onnx_model_path=None to use the packaged models"
            ) from None
        inputs = [i.name for i in session.get_inputs()]
        outputs = {o.name for o in session.get_outputs()}
        wanted = self._model.outputs
        if inputs != [self._model.input] or not set(wanted) <= outputs:
            raise ArtifactError(
                f"{path}: not a RetinaFace model this adapter can run (inputs {inputs}, outputs "
                f"{sorted(outputs)}; expected input {self._model.input!r} and outputs "
                f"{list(wanted)}); pass onnx_model_path=None to use the packaged models"
            )
        return SessionRunner(session, backend="cpu", input_name=inputs[0], output_names=wanted)

    def _detect_custom(self, img: np.ndarray) -> Detections:
        assert self._runner is not None  # set in __init__ whenever _detector is None
        height, width = img.shape[:2]
        # Pad up to a multiple of the coarsest stride so every FPN level lines up with the
        # anchors (the source model upsamples by 2 between levels).
        pad = max(self._model.strides)
        return run_network(
            self._runner,
            self._model,
            img,
            height=math.ceil(height / pad) * pad,
            width=math.ceil(width / pad) * pad,
            source=str(self.onnx_model_path),
            score_threshold=self.confidence_threshold,
            nms_threshold=self.nms_threshold,
        )
