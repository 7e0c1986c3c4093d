"""Drop-in replacement for pyfaceau 1.4.1's ``OptimizedFaceDetector`` (``model_path`` first).

The app picks PyTorch on CUDA, else its ONNX detector when the ONNX file exists, else PyTorch
on the CPU. This package has no PyTorch path: every device runs ``ONNXRetinaFaceDetector``
(CoreML on a Mac), on the ONNX file when it exists and on the packaged buckets when it does
not, and ``backend`` is always ``"onnx"``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from retinaface_coreml.adapter import ONNXRetinaFaceDetector
from retinaface_coreml.errors import ArtifactError, BackendError
from retinaface_coreml.lazy_logging import get_logger

log = get_logger(__name__)

DEVICES = ("cpu", "cuda")
"""The devices the app's ``OptimizedFaceDetector`` documents; both run ONNX Runtime here."""

DEFAULT_ONNX_NAME = "retinaface_mobilenet025_coreml.onnx"
"""The app's default ONNX file, looked for next to ``model_path``."""


class ONNXModelWrapper:
    """``detector.model``: call it with an NCHW tensor, get ``(loc, conf, landms)``.

    Torch tensors in give torch tensors out, made with the torch the caller already imported
    (this package never imports torch); numpy arrays in give numpy arrays out.
    """

    def __init__(self, detector: ONNXRetinaFaceDetector) -> None:
        self.detector = detector

    def __call__(self, img: Any) -> tuple[Any, ...]:
        is_torch = hasattr(img, "detach") and "torch" in sys.modules
        array = img.detach().cpu().numpy() if is_torch else np.asarray(img)
        outputs = self.detector.session.run(None, {"input": array})
        if is_torch:
            torch = sys.modules["torch"]
            return tuple(torch.from_numpy(o) for o in outputs)
        return tuple(outputs)


class OptimizedFaceDetector:
    """The app's wrapper: ``detector`` is an ``ONNXRetinaFaceDetector``, ``backend`` ``"onnx"``.

    ``onnx_model_path`` defaults to ``retinaface_mobilenet025_coreml.onnx`` next to
    ``model_path`` (the app's PyTorch ``.pth``, never read here). ``device`` must be one of
    ``DEVICES``; anything else raises ValueError listing them.
    """

    def __init__(
        self,
        model_path: str | Path,
        onnx_model_path: str | Path | None = None,
        device: str = "cpu",
        confidence_threshold: float = 0.02,
        nms_threshold: float = 0.4,
        vis_threshold: float = 0.5,
        *,
        models_dir: str | Path | None = None,
    ) -> None:
        if device not in DEVICES:
            raise BackendError(
                f"unknown device {device!r}; use one of: {', '.join(map(repr, DEVICES))} "
                "(both run ONNX Runtime here, CoreML on a Mac)"
            )
        if device == "cuda":
            log.warning(
                "device 'cuda': retinaface-coreml has no CUDA path; running ONNX Runtime "
                "(CoreML on a Mac, else the CPU)"
            )
        self.confidence_threshold = confidence_threshold
        self.nms_threshold = nms_threshold
        self.vis_threshold = vis_threshold
        if onnx_model_path is None:
            onnx_model_path = Path(model_path).parent / DEFAULT_ONNX_NAME
        path: Path | None = Path(onnx_model_path)
        if not path.exists():
            # The app falls back to PyTorch here; the packaged buckets are this package's
            # fallback (the same mobilenet0.25 RetinaFace when built from the app's ONNX).
            log.info("%s: not found; using the packaged models", path)
            path = None
        options = {
            "use_coreml": True,
            "confidence_threshold": confidence_threshold,
            "nms_threshold": nms_threshold,
            "vis_threshold": vis_threshold,
            "models_dir": models_dir,
        }
        try:
            self.detector = ONNXRetinaFaceDetector(path, **options)
        except ArtifactError as exc:
            if path is None:
                raise  # the packaged models themselves are broken: nothing to fall back to
            # As the app does when its ONNX fails to load (it falls back to PyTorch).
            log.warning("%s; using the packaged models instead", exc)
            self.detector = ONNXRetinaFaceDetector(None, **options)
        self.cfg = self.detector.cfg
        self.backend = "onnx"
        self.model = ONNXModelWrapper(self.detector)

    def detect_faces(
        self, img_array: np.ndarray, resize: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """See ``ONNXRetinaFaceDetector.detect_faces``."""
        return self.detector.detect_faces(img_array, resize)

    def get_face(
        self, img_array: np.ndarray, resize: float = 1.0
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """See ``ONNXRetinaFaceDetector.get_face``."""
        return self.detector.get_face(img_array, resize)
