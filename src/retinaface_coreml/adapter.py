"""Drop-in replacement for pyfaceau 1.4.1's ``ONNXRetinaFaceDetector``: change one import.

::

    from retinaface_coreml import ONNXRetinaFaceDetector
    detector = ONNXRetinaFaceDetector("weights/retinaface_mobilenet025_coreml.onnx")
    dets, img = detector.detect_faces(frame)   # (N, 15) float32 rows, a copy of frame

Same constructor (positional or keyword, same defaults), attributes and return values; the
README's compatibility table lists every difference and why. With the app's model path,
``detect_faces(frame, resize)`` is the app's full-resolution result: a frame whose scaled size is
a bucket's runs in that bucket (a 1920x1080 frame in the 1080x1920 bucket, no padding); any
other size runs on the given file itself, on the CPU. Without a path, the smallest bucket that
holds the frame serves it (padded), else the one that shrinks it least.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from retinaface_coreml.app_session import BucketSession, providers_for
from retinaface_coreml.artifacts import BucketInfo, DetectorInfo
from retinaface_coreml.buckets import FULL, exact_bucket
from retinaface_coreml.decode import Detections
from retinaface_coreml.detector import FaceDetector, check_unit_interval, run_network
from retinaface_coreml.lazy_logging import get_logger
from retinaface_coreml.packaged import backends
from retinaface_coreml.preprocess import check_image, letterbox, scaled_size
from retinaface_coreml.source_model import SourceModel, open_source

log = get_logger(__name__)


# The legacy pixel convention of the app's NMS (Fast R-CNN's py_cpu_nms): width = x2 - x1 + 1.
APP_NMS_OFFSET = 1.0


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


def model_cfg(model: DetectorInfo) -> dict[str, Any]:
    """The app's ``cfg`` (biubug6/Pytorch_Retinaface's ``cfg_mnet``, MIT) for this model.

    The decoding keys come from the manifest; the training keys are that config's values,
    kept so code that reads them finds them.
    """
    return {
        "name": "mobilenet0.25",
        "min_sizes": [list(sizes) for sizes in model.min_sizes],
        "steps": list(model.strides),
        "variance": list(model.variance),
        "clip": False,
        "loc_weight": 2.0,
        "gpu_train": True,
        "batch_size": 32,
        "ngpu": 1,
        "epoch": 250,
        "decay1": 190,
        "decay2": 220,
        "image_size": 640,
        "pretrain": True,
        "return_layers": {"stage1": 1, "stage2": 2, "stage3": 3},
        "in_channel": 32,
        "out_channel": 64,
    }


def check_resize(resize: object) -> float:
    """``resize`` as a float, or ValueError when it is not a number > 0."""
    if not isinstance(resize, (int, float)) or isinstance(resize, bool) or not resize > 0:
        raise ValueError(f"resize must be a number > 0, got {resize!r}")
    return float(resize)


class ONNXRetinaFaceDetector:
    """pyfaceau's ONNX RetinaFace detector, served from the packaged fixed-shape buckets.

    ``onnx_model_path``: the app's model path. When the file holds the bytes the wheel was
    built from (its sha256 is in manifest.json), the packaged buckets serve it: CoreML on a
    Mac (``use_coreml``), with the shipped cache. Any other RetinaFace ONNX (input ``input``;
    outputs ``loc``, ``conf`` and ``landms`` or ``landmarks``) runs on the CPU at full
    resolution, after one warning saying how to build buckets from it. ``None`` means the
    packaged buckets. A missing file, or one that is not such a model, raises ArtifactError
    naming it and the fix.
    """

    def __init__(
        self,
        onnx_model_path: str | Path | None = None,
        use_coreml: bool = True,
        confidence_threshold: float = 0.02,
        nms_threshold: float = 0.4,
        vis_threshold: float = 0.5,
        *,
        models_dir: str | Path | None = None,
    ) -> None:
        check_unit_interval(
            confidence_threshold=confidence_threshold,
            nms_threshold=nms_threshold,
            vis_threshold=vis_threshold,
        )
        self.confidence_threshold = confidence_threshold
        self.nms_threshold = nms_threshold
        self.vis_threshold = vis_threshold
        self.onnx_model_path = None if onnx_model_path is None else Path(onnx_model_path)
        self._requested = "auto" if use_coreml else "cpu"
        self._last_backend: str | None = None
        self._detector = FaceDetector(
            backend=self._requested,
            score_threshold=confidence_threshold,
            nms_threshold=nms_threshold,
            bucket=FULL,
            models_dir=models_dir,
        )
        self._source: SourceModel | None = None
        if self.onnx_model_path is not None:
            self._source = open_source(self.onnx_model_path, self._detector.model)
        self.cfg = model_cfg(self._detector.info)
        if self._source is not None and not self._source.is_packaged:
            self.session: Any = self._source.session
        else:
            self.session = BucketSession(
                model=self._detector.info,
                buckets=self._detector.model.buckets,
                runner_for=self._detector.runner,
                providers=self._providers,
                source=None if self._source is None else self._source.runner,
            )

    @property
    def backend(self) -> str:
        """``"coreml"`` or ``"onnx_cpu"``, as the app names them: what runs (or will run first)."""
        return "coreml" if backends.COREML_EP in self.session.get_providers() else "onnx_cpu"

    def _providers(self) -> list[str]:
        if self._last_backend is not None:
            return providers_for(self._last_backend)
        coreml = self._requested != "cpu" and backends.coreml_available()
        return providers_for("coreml" if coreml else "cpu")

    def preprocess_image(
        self, img_array: np.ndarray, resize: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(tensor, img_raw)``: the frame scaled by ``resize``, BGR minus the mean, as
        [1, 3, h, w] float32 (no padding), and a copy of the frame as given."""
        resize = check_resize(resize)
        image = check_image(img_array, allow_float=True)
        # The network input detect_faces builds, at exactly the scaled size: nothing to pad.
        tensor, _ = letterbox(
            image,
            *scaled_size(*image.shape[:2], resize),
            self._detector.info.mean_bgr,
            max_scale=resize,
            allow_float=True,
        )
        return tensor, image.copy()

    def detect_faces(
        self, img_array: np.ndarray, resize: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(dets, img_raw)``: (N, 15) float32 rows ``[x1, y1, x2, y2, score, lx1, ly1, ...,
        lx5, ly5]`` best first, in the pixels of the frame as given, and a copy of that frame.

        The network sees the frame scaled by ``resize``, in the bucket of exactly that size or,
        with a model path and no such bucket, on the file itself (exact, CPU); coordinates are
        divided back by ``resize`` (what the app's ``boxes * scale / resize`` means). Boxes are
        not clipped to the frame, as in the app. Equal scores keep the network's anchor order
        (``decode.nms``).
        """
        resize = check_resize(resize)
        image = check_image(img_array, allow_float=True)
        img_raw = image.copy()
        height, width = image.shape[:2]
        model = self._detector.info
        net_h, net_w = scaled_size(height, width, resize)
        bucket = None if self._source is None else self._exact_bucket(self._source, net_h, net_w)
        if self._source is not None and bucket is None:
            open_runner, source = partial(getattr, self._source, "runner"), str(self._source.path)
        else:
            chosen = bucket or self._detector.bucket_for(height, width, resize=resize)
            open_runner = partial(self._detector.runner, chosen)
            source = str(self._detector.manifest.path(chosen.file))
            net_h, net_w = chosen.height, chosen.width
        found, runner = run_network(
            open_runner,
            model,
            image,
            height=net_h,
            width=net_w,
            source=source,
            score_threshold=self.confidence_threshold,
            nms_threshold=self.nms_threshold,
            resize=resize,
            clip=False,
            nms_offset=APP_NMS_OFFSET,
            allow_float=True,
        )
        self._last_backend = runner.backend
        return to_rows(found), img_raw

    def _exact_bucket(self, source: SourceModel, height: int, width: int) -> BucketInfo | None:
        """The bucket of exactly this network input size, when the given file is the packaged
        source; None sends the frame to the file itself at full resolution on the CPU.

        Only an exact size gives the app's result: padding 1080 to 1088 moved a face near the
        padded edge (IoU 0.95, landmarks 8.4 px), and shrinking a frame no bucket holds changed
        ``dets[0]`` on 4 of the six 1920-wide photos (``make compat``).
        """
        if not source.is_packaged:
            return None
        bucket = exact_bucket(self._detector.model.buckets, height, width)
        if bucket is not None:
            return bucket
        log.warning_once(
            (height, width),
            "%dx%d: no packaged bucket has this size; running %s on the CPU at full "
            "resolution, exact as the app. To serve this size from a bucket (CoreML on "
            'macOS), add  [[buckets]] name = "%dx%d" inputs = { %s = [1, 3, %d, %d] } '
            "full_resolution = true  to models/%s.toml and run `make models`",
            height,
            width,
            source.path,
            height,
            width,
            self._detector.info.input,
            height,
            width,
            self._detector.model.name,
        )
        return None

    def get_face(
        self, img_array: np.ndarray, resize: float = 1.0
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(face_crop, dets)`` for the best face, or ``(None, None)`` when there is none or
        its score is below ``vis_threshold``. The crop is a view of the returned frame copy."""
        dets, img_raw = self.detect_faces(img_array, resize)
        if len(dets) == 0 or dets[0, 4] < self.vis_threshold:
            return None, None
        # Truncate as the app's astype(int) does, but clip at 0: a negative start would wrap
        # around in numpy slicing and give an empty or wrong crop.
        x1, y1, x2, y2 = np.maximum(dets[0, :4].astype(int), 0)
        return img_raw[y1:y2, x1:x2], dets
