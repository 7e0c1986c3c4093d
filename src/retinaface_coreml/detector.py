"""FaceDetector: pick a bucket, letterbox, run, decode, map back to frame pixels."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from retinaface_coreml import backends
from retinaface_coreml.artifacts import MODELS_DIR, BucketInfo, ModelInfo, load_manifest
from retinaface_coreml.buckets import AUTO, resolve_bucket
from retinaface_coreml.decode import Detections, decode, prior_boxes
from retinaface_coreml.errors import ArtifactError
from retinaface_coreml.faces import Face, faces_from
from retinaface_coreml.preprocess import check_image, letterbox

log = logging.getLogger(__name__)


def check_thresholds(score_threshold: float, nms_threshold: float) -> None:
    """Raise ValueError naming the accepted range when a threshold is outside it."""
    for name, value in (("score_threshold", score_threshold), ("nms_threshold", nms_threshold)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        # NaN fails both comparisons, so it is refused too.
        if not ok or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def run_network(
    runner: backends.Runner,
    model: ModelInfo,
    image: np.ndarray,
    *,
    height: int,
    width: int,
    source: str,
    score_threshold: float,
    nms_threshold: float,
) -> Detections:
    """Detect in one checked frame with a ``height`` x ``width`` network input; frame pixels out.

    Boxes are clipped to the frame; landmarks are not (a point may sit just outside it).
    ``source`` names the model file for error messages.
    """
    tensor, box = letterbox(image, height, width, model.mean_bgr)
    loc, conf, landmarks = (output[0] for output in runner.run(tensor))
    priors = prior_boxes(height, width, model.strides, model.min_sizes)
    if loc.shape[0] != priors.shape[0]:
        raise ArtifactError(
            f"{source}: {loc.shape[0]} anchors in the output, but the manifest's strides give "
            f"{priors.shape[0]} for {height}x{width}; the model and manifest.json do not match"
        )
    found = decode(
        loc,
        conf,
        landmarks,
        priors,
        variance=model.variance,
        score_threshold=score_threshold,
        nms_threshold=nms_threshold,
    ).scaled(box.scale_x, box.scale_y)
    limits = np.array([box.width, box.height, box.width, box.height], dtype=np.float32)
    return Detections(
        boxes=np.clip(found.boxes, 0, limits),
        scores=found.scores,
        landmarks=found.landmarks,
    )


class FaceDetector:
    """RetinaFace (mobilenet0.25) on the packaged fixed-shape buckets.

    ``backend`` is ``"auto"``, ``"cpu"`` or ``"coreml"``; ``bucket`` is ``"auto"`` (closest
    aspect ratio per frame) or a bucket name such as ``"384x640"``; ``models_dir`` defaults to
    the installed package's models. After a call to ``detect``, the attributes ``backend`` and
    ``bucket`` say what ran (``None`` before the first call). Safe to share between threads.
    """

    def __init__(
        self,
        backend: str = "auto",
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        bucket: str = AUTO,
        models_dir: str | Path | None = None,
    ) -> None:
        check_thresholds(score_threshold, nms_threshold)
        backends.check_backend(backend)
        self.requested_backend = backend
        self.requested_bucket = bucket
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.manifest = load_manifest(Path(models_dir) if models_dir is not None else MODELS_DIR)
        if bucket != AUTO:
            self.manifest.bucket(bucket)  # UnknownBucketError now, not at the first frame
        self.backend: str | None = None
        self.bucket: str | None = None
        self._runners: dict[str, backends.Runner] = {}
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an HxW / HxWx1 gray, HxWx3 BGR or HxWx4 BGRA uint8 frame, best first."""
        return faces_from(self.detect_arrays(image))

    def detect_arrays(self, image: np.ndarray) -> Detections:
        """Like ``detect`` but as arrays: boxes (K, 4), scores (K,), landmarks (K, 5, 2)."""
        image = check_image(image)
        height, width = image.shape[:2]
        bucket = resolve_bucket(self.manifest, self.requested_bucket, height, width)
        runner = self._runner(bucket)
        found = run_network(
            runner,
            self.manifest.model,
            image,
            height=bucket.height,
            width=bucket.width,
            source=str(self.manifest.path(bucket.file)),
            score_threshold=self.score_threshold,
            nms_threshold=self.nms_threshold,
        )
        self.backend, self.bucket = runner.backend, bucket.name
        return found

    def warmup(self, progress: backends.Progress | None = None) -> None:
        """Verify and prepare every bucket this detector may use, and keep their runners open."""
        buckets = self._buckets()
        ready = backends.warmup(
            self.manifest, buckets, progress=progress, backend=self.requested_backend
        )
        with self._lock:
            for name, runner in ready.items():
                self._runners.setdefault(name, runner)
        for bucket in buckets:
            self._runner(bucket)  # opens any bucket warmup did not (an unusable cache dir)

    def _buckets(self) -> tuple[BucketInfo, ...]:
        if self.requested_bucket == AUTO:
            return self.manifest.buckets
        return (self.manifest.bucket(self.requested_bucket),)

    def _runner(self, bucket: BucketInfo) -> backends.Runner:
        """The bucket's runner, opened on first use and kept."""
        runner = self._runners.get(bucket.name)
        if runner is None:
            with self._lock:
                runner = self._runners.get(bucket.name)
                if runner is None:
                    runner = backends.open_runner(
                        self.manifest, bucket, backend=self.requested_backend
                    )
                    log.debug("bucket %s ready on %s", bucket.name, runner.backend)
                    self._runners[bucket.name] = runner
        return runner
