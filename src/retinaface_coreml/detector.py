"""FaceDetector: pick a bucket, letterbox, run, decode, map back to frame pixels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from retinaface_coreml.artifacts import BucketInfo, DetectorInfo, load_manifest
from retinaface_coreml.buckets import AUTO, FULL, fast_buckets, resolve_bucket
from retinaface_coreml.decode import Detections, decode, prior_boxes
from retinaface_coreml.errors import ArtifactError
from retinaface_coreml.faces import Face, faces_from
from retinaface_coreml.lazy_logging import get_logger
from retinaface_coreml.packaged import backends
from retinaface_coreml.preprocess import check_image, letterbox

log = get_logger(__name__)


def check_thresholds(score_threshold: float, nms_threshold: float) -> None:
    """Raise ValueError naming the accepted range when a threshold is outside it."""
    check_unit_interval(score_threshold=score_threshold, nms_threshold=nms_threshold)


def check_unit_interval(**values: float) -> None:
    """Raise ValueError naming the first keyword whose value is not a number in [0, 1]."""
    for name, value in values.items():
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        # NaN fails both comparisons, so it is refused too.
        if not ok or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def run_network(
    open_runner: Callable[[], backends.Runner],
    model: DetectorInfo,
    image: np.ndarray,
    *,
    height: int,
    width: int,
    source: str,
    score_threshold: float,
    nms_threshold: float,
    resize: float = 1.0,
    clip: bool = True,
    nms_offset: float = 0.0,
    allow_float: bool = False,
) -> tuple[Detections, backends.Runner]:
    """Detect in one checked frame with a ``height`` x ``width`` network input; frame pixels out,
    and the runner ``open_runner()`` gave, which ran it.

    The frame is scaled by ``resize`` (or less, to fit). Boxes are clipped to the frame when
    ``clip``; landmarks never are (a point may sit just outside it). ``source`` names the model
    file for error messages. ``nms_offset`` and ``allow_float``: see ``decode.nms`` and
    ``preprocess.check_image``.

    The frame is letterboxed before the runner is opened: a session just created keeps ORT's
    worker threads spinning, and cv2's resize beside them took 11 ms instead of 2 on two cores.
    """
    tensor, box = letterbox(
        image, height, width, model.mean_bgr, max_scale=resize, allow_float=allow_float
    )
    runner = open_runner()
    loc, conf, landmarks = (output[0] for output in runner.run({model.input: tensor})[:3])
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
        scale=(box.scale_x, box.scale_y),
        nms_offset=nms_offset,
    )
    if not clip:
        return found, runner
    limits = np.array([box.width, box.height, box.width, box.height], dtype=np.float32)
    clipped = Detections(
        boxes=np.clip(found.boxes, 0, limits), scores=found.scores, landmarks=found.landmarks
    )
    return clipped, runner


class FaceDetector:
    """RetinaFace (mobilenet0.25) on the packaged fixed-shape buckets.

    ``backend`` is ``"auto"``, ``"cpu"`` or ``"coreml"``. ``bucket`` is ``"auto"`` (the fast
    default: the small bucket closest in aspect ratio, the frame shrunk to fit), ``"full"``
    (full resolution: the smallest bucket that holds the frame unshrunk, e.g. ``1080x1920`` for
    a 1080p frame, which then runs with no rescaling; see ``buckets.fitting_bucket``) or a
    bucket name such as ``"384x640"``. ``models_dir`` defaults to the installed package's
    models. After a call to ``detect``, the attributes ``backend`` and
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
        self.manifest = load_manifest(Path(models_dir) if models_dir is not None else None)
        self.model = self.manifest.detector_model("retinaface")
        self.info = self.model.detector
        if self.model.output_names[:3] != self.info.outputs:
            raise ArtifactError(
                f"{self.manifest.root}: model {self.model.name!r} lists outputs "
                f"{list(self.model.output_names)}, its detector section {list(self.info.outputs)}; "
                "rebuild with `make models`"
            )
        self._target = backends.target(self.manifest, self.model)
        if bucket not in (AUTO, FULL):
            self.model.bucket(bucket)  # UnknownBucketError now, not at the first frame
        self.backend: str | None = None
        self.bucket: str | None = None
        self._runners = backends.Runners(self._target, backend=backend)

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an HxW / HxWx1 gray, HxWx3 BGR or HxWx4 BGRA uint8 frame, best first."""
        return faces_from(self.detect_arrays(image))

    def detect_arrays(self, image: np.ndarray) -> Detections:
        """Like ``detect`` but as arrays: boxes (K, 4), scores (K,), landmarks (K, 5, 2)."""
        image = check_image(image)
        bucket = self.bucket_for(*image.shape[:2])
        found, runner = run_network(
            lambda: self.runner(bucket),
            self.info,
            image,
            height=bucket.height,
            width=bucket.width,
            source=str(self.manifest.path(bucket.file)),
            score_threshold=self.score_threshold,
            nms_threshold=self.nms_threshold,
        )
        self.backend, self.bucket = runner.backend, bucket.name
        return found

    def bucket_for(self, height: int, width: int, *, resize: float = 1.0) -> BucketInfo:
        """The bucket a ``height`` x ``width`` frame scaled by ``resize`` runs in."""
        return resolve_bucket(self.model, self.requested_bucket, height, width, resize=resize)

    def warmup(self, progress: backends.Progress | None = None) -> None:
        """Verify and prepare every bucket this detector may use, and keep their runners open."""
        buckets = self._buckets()
        ready = backends.warmup(
            self._target, buckets, progress=progress, backend=self.requested_backend
        )
        self._runners.adopt(ready)
        for bucket in buckets:
            self.runner(bucket)  # opens any bucket warmup did not (an unusable cache dir)

    def _buckets(self) -> tuple[BucketInfo, ...]:
        if self.requested_bucket == AUTO:
            return fast_buckets(self.model)
        if self.requested_bucket == FULL:
            return self.model.buckets
        return (self.model.bucket(self.requested_bucket),)

    def runner(self, bucket: BucketInfo) -> backends.Runner:
        """The bucket's runner, opened on first use and kept."""
        return self._runners.open(bucket)
