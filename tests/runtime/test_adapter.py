"""The app's classes (pyfaceau 1.4.1): call forms, defaults, attributes, copies, resize
coordinates, model-path recognition and full-resolution exactness, without torch."""

from __future__ import annotations

import inspect
import logging
import shutil
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from retinaface_coreml import ArtifactError, ONNXRetinaFaceDetector, OptimizedFaceDetector
from retinaface_coreml.app_session import BucketSession
from retinaface_coreml.decode import pairwise_iou
from tests.conftest import (
    EXPECTED_FACES,
    ROOT,
    reference_boxes,
    write_landms_export,
    write_relu_onnx,
)
from tests.runtime.photos import iou, load_photo, unmatched

SOURCE_MODEL = ROOT / "weights" / "retinaface_mobilenet025.onnx"
needs_source = pytest.mark.skipif(
    not SOURCE_MODEL.exists(), reason="run `make models` (toolchain fetch) first"
)

# pyfaceau 1.4.1, pyfaceau/detectors/retinaface.py: parameter names and defaults, in order.
APP_SIGNATURES = {
    (ONNXRetinaFaceDetector, "__init__"): [
        ("onnx_model_path", inspect.Parameter.empty),
        ("use_coreml", True),
        ("confidence_threshold", 0.02),
        ("nms_threshold", 0.4),
        ("vis_threshold", 0.5),
    ],
    (ONNXRetinaFaceDetector, "preprocess_image"): [("img_array", None), ("resize", 1.0)],
    (ONNXRetinaFaceDetector, "detect_faces"): [("img_array", None), ("resize", 1.0)],
    (ONNXRetinaFaceDetector, "get_face"): [("img_array", None), ("resize", 1.0)],
    (OptimizedFaceDetector, "__init__"): [
        ("model_path", inspect.Parameter.empty),
        ("onnx_model_path", None),
        ("device", "cpu"),
        ("confidence_threshold", 0.02),
        ("nms_threshold", 0.4),
        ("vis_threshold", 0.5),
    ],
    (OptimizedFaceDetector, "detect_faces"): [("img_array", None), ("resize", 1.0)],
    (OptimizedFaceDetector, "get_face"): [("img_array", None), ("resize", 1.0)],
}


def crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """A ``height`` x ``width`` frame cut from the middle of ``image`` (upscaled if needed)."""
    import cv2

    scale = max(1.0, height / image.shape[0], width / image.shape[1])
    if scale > 1:
        image = cv2.resize(image, None, fx=scale + 1e-3, fy=scale + 1e-3)
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[top : top + height, left : left + width])


@pytest.fixture(scope="module")
def app(package_models) -> ONNXRetinaFaceDetector:
    return ONNXRetinaFaceDetector(models_dir=package_models)


@pytest.fixture(scope="module")
def landms_export(tmp_path_factory) -> Path:
    """The source model re-exported the app's way: the landmark output named ``landms``.

    Other bytes than the wheel's source, so it runs as "another model": the dynamic-shape
    network on the CPU at full resolution, which is the app's own computation.
    """
    if not SOURCE_MODEL.exists():
        pytest.skip("run `make models` (toolchain fetch) first")
    folder = tmp_path_factory.mktemp("export")
    return write_landms_export(SOURCE_MODEL, folder / "retinaface_mobilenet025_coreml.onnx")


@pytest.mark.parametrize(("owner", "method"), list(APP_SIGNATURES))
def test_signatures_and_defaults_are_the_apps(owner, method: str) -> None:
    params = list(inspect.signature(getattr(owner, method)).parameters.values())[1:]
    positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    for (name, default), param in zip(APP_SIGNATURES[owner, method], positional, strict=False):
        assert param.name == name
        if default is not None and default is not inspect.Parameter.empty:
            assert param.default == default and type(param.default) is type(default)
    assert len(positional) == len(APP_SIGNATURES[owner, method])
    # Anything added is keyword-only and optional, so no call the app makes can change meaning.
    assert all(p.default is not p.empty for p in params if p.kind is p.KEYWORD_ONLY)


def test_optimized_detector_is_importable_from_the_package() -> None:
    import retinaface_coreml

    assert "OptimizedFaceDetector" in retinaface_coreml.__all__


@needs_source
def test_every_call_form_of_the_app(package_models) -> None:
    path = str(SOURCE_MODEL)
    forms = [
        ONNXRetinaFaceDetector(path, True, 0.02, 0.4, 0.5, models_dir=package_models),
        ONNXRetinaFaceDetector(
            path,
            use_coreml=True,
            confidence_threshold=0.02,
            nms_threshold=0.4,
            vis_threshold=0.5,
            models_dir=package_models,
        ),
        ONNXRetinaFaceDetector(onnx_model_path=path, models_dir=package_models),
        ONNXRetinaFaceDetector(path, models_dir=package_models),
    ]
    image = load_photo("faceapi_sample2.jpg")
    first = forms[0].detect_faces(image)[0]
    for detector in forms:
        assert (detector.confidence_threshold, detector.nms_threshold) == (0.02, 0.4)
        assert detector.vis_threshold == 0.5
        np.testing.assert_array_equal(detector.detect_faces(image)[0], first)


def test_attributes(app) -> None:
    assert app.cfg["min_sizes"] == [[16, 32], [64, 128], [256, 512]]
    assert app.cfg["steps"] == [8, 16, 32] and app.cfg["variance"] == [0.1, 0.2]
    assert app.cfg["clip"] is False and app.cfg["name"] == "mobilenet0.25"
    assert app.backend == "onnx_cpu"  # before any call too, not None
    assert app.session.get_providers() == ["CPUExecutionProvider"]
    app.detect_faces(load_photo("skimage_astronaut.png"))
    assert app.backend == "onnx_cpu"


def test_detections_and_the_returned_frame_is_a_copy(app) -> None:
    image = load_photo("faceapi_sample5.jpg")
    before = image.copy()
    dets, returned = app.detect_faces(image)
    assert dets.dtype == np.float32 and dets.shape[1] == 15 and len(dets) >= 5
    assert returned is not image and not np.shares_memory(returned, image)
    np.testing.assert_array_equal(returned, before)
    returned[:] = 0
    np.testing.assert_array_equal(image, before)
    assert (np.diff(dets[:, 4]) <= 0).all()


def test_default_threshold_is_the_apps_0_02(app, package_models) -> None:
    image = load_photo("faceapi_sample1.jpg")
    low = app.detect_faces(image)[0]
    strict = ONNXRetinaFaceDetector(confidence_threshold=0.5, models_dir=package_models)
    high = strict.detect_faces(image)[0]
    assert len(low) > len(high) >= 3
    assert low[:, 4].min() > 0.02 and high[:, 4].min() > 0.5


def test_threshold_attributes_are_read_at_each_call(package_models) -> None:
    detector = ONNXRetinaFaceDetector(models_dir=package_models)
    detector.confidence_threshold = 0.9
    dets, _ = detector.detect_faces(load_photo("faceapi_sample3.jpg"))
    assert len(dets) == 3 and (dets[:, 4] > 0.9).all()


@pytest.mark.parametrize("name", list(EXPECTED_FACES))
def test_faces_at_threshold_0_5(package_models, name: str) -> None:
    detector = ONNXRetinaFaceDetector(confidence_threshold=0.5, models_dir=package_models)
    dets, _ = detector.detect_faces(load_photo(name))
    assert unmatched(dets[:, :4].tolist(), reference_boxes().get(name, [])) == []


def test_float32_frames_are_accepted_like_uint8(app) -> None:
    image = crop(load_photo("faceapi_sample2.jpg"), 1080, 1920)  # unscaled: the same tensor
    as_uint8, _ = app.detect_faces(image)
    as_float, returned = app.detect_faces(image.astype(np.float32))
    assert returned.dtype == np.float32
    np.testing.assert_array_equal(as_float, as_uint8)
    as_double, _ = app.detect_faces(image.astype(np.float64))
    np.testing.assert_array_equal(as_double, as_uint8)


def test_no_faces_is_an_empty_15_column_array(app, package_models) -> None:
    cat = load_photo("skimage_chelsea.png")
    strict = ONNXRetinaFaceDetector(confidence_threshold=0.5, models_dir=package_models)
    dets, _ = strict.detect_faces(cat)
    assert dets.shape == (0, 15) and dets.dtype == np.float32
    weak, _ = app.detect_faces(cat)  # at 0.02 a few weak boxes, all below vis_threshold
    assert len(weak) and weak[:, 4].max() < 0.5
    assert app.get_face(cat) == (None, None)


@pytest.mark.parametrize("resize", [0.5, 0.25])
def test_resize_gives_original_frame_pixels_and_the_original_frame(app, resize: float) -> None:
    name = "faceapi_sample6.jpg"
    image = load_photo(name)
    dets, returned = app.detect_faces(image, resize=resize)
    assert returned.shape == image.shape
    strong = dets[dets[:, 4] > 0.5]
    assert len(strong) == 4
    assert unmatched(strong[:, :4].tolist(), reference_boxes()[name]) == []
    for row in strong:  # landmarks in the same pixels: inside their own boxes
        points = row[5:].reshape(5, 2)
        assert (points[:, 0] >= row[0]).all() and (points[:, 0] <= row[2]).all()
        assert (points[:, 1] >= row[1]).all() and (points[:, 1] <= row[3]).all()


@needs_source
@pytest.mark.parametrize(
    ("name", "size"),
    [("faceapi_sample4.jpg", (1080, 1920)), ("faceapi_sample6.jpg", None)],
    ids=["1080x1920", "1537x1920"],  # 1537 rows at 0.5 round to 768, just under 0.5 x 1537
)
def test_resize_scales_a_float32_copy_as_the_app_does(
    package_models, landms_export, name, size
) -> None:
    """The app shrinks ``np.float32(frame)`` with fx = fy = resize: ours gives those numbers."""
    import cv2

    frame = load_photo(name) if size is None else crop(load_photo(name), *size)
    given = ONNXRetinaFaceDetector(SOURCE_MODEL, models_dir=package_models)
    reference = ONNXRetinaFaceDetector(landms_export, models_dir=package_models)
    scaled = cv2.resize(np.float32(frame), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_LINEAR)
    want, _ = reference.detect_faces(scaled)
    want[:, :4] /= 0.5
    want[:, 5:] /= 0.5
    got, _ = given.detect_faces(frame, resize=0.5)
    strong_want, strong_got = want[want[:, 4] > 0.5], got[got[:, 4] > 0.5]
    assert len(strong_got) == len(strong_want) == 4
    np.testing.assert_allclose(strong_got, strong_want, atol=1e-3)


def test_resize_half_of_a_doubled_frame_is_the_frame(app) -> None:
    """A 2160x3840 frame at resize 0.5 runs in the 1080x1920 bucket; coordinates are in the
    doubled frame's pixels, so they are twice those of the 1080x1920 frame."""
    import cv2

    frame = crop(load_photo("faceapi_sample4.jpg"), 1080, 1920)
    doubled = cv2.resize(frame, (3840, 2160), interpolation=cv2.INTER_LINEAR)
    small, _ = app.detect_faces(frame)
    big, returned = app.detect_faces(doubled, resize=0.5)
    assert returned.shape == doubled.shape
    small, big = small[small[:, 4] > 0.5], big[big[:, 4] > 0.5]
    assert len(big) == len(small) == 4
    overlap = pairwise_iou(big[:, :4], small[:, :4] * 2)
    assert overlap.max(axis=1).min() >= 0.95


def test_resize_upscales_as_asked(app) -> None:
    name = "skimage_astronaut.png"
    dets, returned = app.detect_faces(load_photo(name), resize=2.0)
    assert returned.shape == (512, 512, 3)
    assert iou(dets[0, :4].tolist(), reference_boxes()[name][0]) >= 0.5


@pytest.mark.parametrize("resize", [0, -1.0, float("nan"), "1", True])
def test_bad_resize(app, resize) -> None:
    with pytest.raises(ValueError, match="resize must be a number > 0"):
        app.detect_faces(load_photo("skimage_astronaut.png"), resize=resize)


def test_bad_image_names_the_formats(app) -> None:
    with pytest.raises(ValueError, match="HxWx3"):
        app.detect_faces(np.zeros((10, 10, 2), np.uint8))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"confidence_threshold": 2}, "confidence_threshold"),
        ({"nms_threshold": -1}, "nms_threshold"),
        ({"vis_threshold": float("nan")}, "vis_threshold"),
    ],
)
def test_thresholds_are_validated(package_models, kwargs, name: str) -> None:
    with pytest.raises(ValueError, match=rf"{name} must be a number in \[0, 1\]"):
        ONNXRetinaFaceDetector(models_dir=package_models, **kwargs)


def test_get_face_crops_the_best_face_from_the_copy(app, package_models) -> None:
    image = load_photo("matplotlib_grace_hopper.jpg")
    face, dets = app.get_face(image)
    x1, y1, x2, y2 = dets[0, :4].astype(int)
    assert face.shape == (y2 - y1, x2 - x1, 3)
    np.testing.assert_array_equal(face, image[y1:y2, x1:x2])
    picky = ONNXRetinaFaceDetector(vis_threshold=1.0, models_dir=package_models)
    assert picky.get_face(image) == (None, None)


def test_boxes_are_not_clipped_like_the_apps(app) -> None:
    image = load_photo("skimage_astronaut.png")
    shifted = np.ascontiguousarray(image[:, 190:])  # the face now touches the left edge
    dets, _ = app.detect_faces(shifted)
    best = dets[0]
    assert best[4] > 0.9 and best[0] < 0  # the box reaches past the frame, as in the app
    face, _ = app.get_face(shifted)
    assert face.shape[1] == int(best[2])  # the crop starts at column 0, not wrapped around


# Full resolution: the packaged buckets against the dynamic-shape network at the frame's own
# size (the app's computation), for the frame sizes that have a bucket.
FRAMES = [(1080, 1920), (1920, 1080), (720, 1280), (1280, 720)]
PHOTOS = ["faceapi_sample1.jpg", "faceapi_sample4.jpg", "faceapi_sample6.jpg"]


@pytest.mark.parametrize("threshold", [0.5, 0.02])
@pytest.mark.parametrize("size", FRAMES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_full_resolution_equals_the_dynamic_network(
    package_models, landms_export: Path, size, threshold: float
) -> None:
    ours = ONNXRetinaFaceDetector(confidence_threshold=threshold, models_dir=package_models)
    reference = ONNXRetinaFaceDetector(
        landms_export, confidence_threshold=threshold, models_dir=package_models
    )
    assert isinstance(reference.session, onnxruntime.InferenceSession)
    for name in PHOTOS:
        frame = crop(load_photo(name), *size)
        want, _ = reference.detect_faces(frame)
        got, _ = ours.detect_faces(frame)
        assert len(got) == len(want), name
        if not len(want):
            continue
        overlap = pairwise_iou(want[:, :4], got[:, :4])
        partner = overlap.argmax(axis=1)
        assert overlap.max(axis=1).min() >= 0.99, name
        assert np.abs(want[:, 5:] - got[partner, 5:]).max() <= 1.0, name
        np.testing.assert_allclose(got[0], want[0], atol=1e-3)


def test_a_full_resolution_frame_runs_unscaled_in_its_bucket(package_models) -> None:
    from retinaface_coreml import FaceDetector

    detector = FaceDetector(bucket="full", models_dir=package_models)
    faces = detector.detect(crop(load_photo("faceapi_sample4.jpg"), 1080, 1920))
    assert detector.bucket == "1080x1920" and len(faces) == 4
    fast = FaceDetector(models_dir=package_models)
    fast.detect(crop(load_photo("faceapi_sample4.jpg"), 1080, 1920))
    assert fast.bucket == "384x640"


# Model paths: the wheel's own source is recognised by its bytes; anything else is checked.


@needs_source
def test_the_wheels_source_path_serves_from_the_buckets(package_models, tmp_path, caplog) -> None:
    renamed = tmp_path / "retinaface_mobilenet025_coreml.onnx"
    shutil.copy(SOURCE_MODEL, renamed)  # the app's file name, the wheel's bytes
    caplog.set_level(logging.INFO)
    detector = ONNXRetinaFaceDetector(str(renamed), models_dir=package_models)
    assert isinstance(detector.session, BucketSession)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    dets, _ = detector.detect_faces(crop(load_photo("faceapi_sample1.jpg"), 1080, 1920))
    assert len(dets[dets[:, 4] > 0.5]) == 4


@needs_source
def test_with_the_app_path_a_size_no_bucket_has_runs_exactly_on_that_file(
    package_models, landms_export: Path, caplog
) -> None:
    """A 1920x1280 photo: no bucket of that size, so the given file runs it, as the app does."""
    reference = ONNXRetinaFaceDetector(landms_export, models_dir=package_models)
    given = ONNXRetinaFaceDetector(SOURCE_MODEL, models_dir=package_models)
    packaged_only = ONNXRetinaFaceDetector(models_dir=package_models)
    caplog.set_level(logging.WARNING)
    photo = load_photo("faceapi_sample1.jpg")
    want, _ = reference.detect_faces(photo)
    for _ in range(2):
        got, _ = given.detect_faces(photo)
        np.testing.assert_array_equal(got, want)
    warnings = [r.getMessage() for r in caplog.records if "no packaged bucket" in r.getMessage()]
    assert len(warnings) == 1 and "1280x1920" in warnings[0] and "make models" in warnings[0]
    assert given.backend == "onnx_cpu"
    # Without a path there is no file to run: the bucket that shrinks it least serves it.
    shrunk, _ = packaged_only.detect_faces(photo)
    assert packaged_only._detector.bucket_for(*photo.shape[:2]).name == "1080x1920"
    assert shrunk.shape != want.shape or not np.array_equal(shrunk, want)
    # A size that has its bucket still runs there, not on the file.
    given.detect_faces(crop(photo, 1080, 1920))
    assert "1080x1920" in given._detector._runners


def test_another_model_runs_on_the_cpu_with_one_warning(
    package_models, landms_export: Path, caplog, monkeypatch
) -> None:
    from retinaface_coreml import source_model

    monkeypatch.setattr(source_model.log, "_once", set())  # earlier tests opened this file too
    caplog.set_level(logging.WARNING)
    for _ in range(2):
        detector = ONNXRetinaFaceDetector(str(landms_export), models_dir=package_models)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(landms_export) in warnings[0] and "make models SOURCE=" in warnings[0]
    assert detector.backend == "onnx_cpu"
    assert detector.session.get_providers() == ["CPUExecutionProvider"]
    outputs = detector.session.run(
        None, {"input": detector.preprocess_image(np.zeros((64, 96, 3), np.uint8))[0]}
    )
    assert [o.shape for o in outputs] == [(1, 252, 4), (1, 252, 2), (1, 252, 10)]


def test_missing_or_wrong_model_paths_name_the_file_and_the_fix(package_models, tmp_path) -> None:
    missing = tmp_path / "missing.onnx"
    with pytest.raises(ArtifactError, match=r"missing\.onnx: no such file; pass the path"):
        ONNXRetinaFaceDetector(str(missing), models_dir=package_models)
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    with pytest.raises(ArtifactError, match=r"notes\.onnx: cannot load as an ONNX model"):
        ONNXRetinaFaceDetector(text, models_dir=package_models)
    assert issubclass(ArtifactError, Exception)  # the app's `except Exception` catches it


def test_an_onnx_that_is_not_retinaface_is_refused(package_models, tmp_path) -> None:
    path = write_relu_onnx(tmp_path / "relu.onnx")
    with pytest.raises(ArtifactError, match=r"relu\.onnx: not a RetinaFace model .*'landms'"):
        ONNXRetinaFaceDetector(path, models_dir=package_models)


# session.run: the app's ONNXModelWrapper calls it with its own preprocessed tensor.


@needs_source
@pytest.mark.parametrize("size", [(1080, 1920), (500, 500)], ids=["bucket", "padded"])
def test_session_run_matches_the_dynamic_model(app, package_models, size) -> None:
    frame = crop(load_photo("faceapi_sample2.jpg"), *size)
    tensor, _ = app.preprocess_image(frame)
    assert tensor.dtype == np.float32 and tensor.shape == (1, 3, *size)
    source = onnxruntime.InferenceSession(str(SOURCE_MODEL), providers=["CPUExecutionProvider"])
    want = source.run(None, {"input": tensor})
    got = app.session.run(None, {"input": tensor})
    assert [g.shape for g in got] == [w.shape for w in want]
    if size == (1080, 1920):  # its own bucket: no padding, the same numbers
        for g, w in zip(got, want, strict=True):
            assert np.abs(g - w).max() <= 1e-4
    # Given the source's path, a size without its own bucket runs in that file: exact too.
    given = ONNXRetinaFaceDetector(SOURCE_MODEL, models_dir=package_models)
    for g, w in zip(given.session.run(None, {"input": tensor}), want, strict=True):
        assert np.abs(g - w).max() <= 1e-4
    landms = app.session.run(["landms"], {"input": tensor})[0]
    np.testing.assert_array_equal(landms, got[2])


def test_session_run_refuses_a_tensor_larger_than_every_bucket(app) -> None:
    with pytest.raises(ValueError, match=r"2000x2000 is larger than every packaged bucket"):
        app.session.run(None, {"input": np.zeros((1, 3, 2000, 2000), np.float32)})


@needs_source
def test_session_run_on_oversize_uses_the_given_source_file(package_models) -> None:
    detector = ONNXRetinaFaceDetector(SOURCE_MODEL, models_dir=package_models)
    outputs = detector.session.run(None, {"input": np.zeros((1, 3, 2048, 2048), np.float32)})
    assert outputs[0].shape == (1, 2 * (256 * 256 + 128 * 128 + 64 * 64), 4)


# OptimizedFaceDetector


def test_optimized_detector_without_an_onnx_next_to_the_pth(package_models, tmp_path) -> None:
    detector = OptimizedFaceDetector(
        str(tmp_path / "Alignment_RetinaFace.pth"), models_dir=package_models
    )
    assert detector.backend == "onnx"
    assert isinstance(detector.detector, ONNXRetinaFaceDetector)
    assert (detector.confidence_threshold, detector.nms_threshold) == (0.02, 0.4)
    assert detector.vis_threshold == 0.5 and detector.cfg["steps"] == [8, 16, 32]
    image = crop(load_photo("faceapi_sample3.jpg"), 720, 1280)
    dets, _ = detector.detect_faces(image)
    np.testing.assert_array_equal(dets, detector.detector.detect_faces(image)[0])
    face, _ = detector.get_face(image)
    assert face is not None and face.ndim == 3
    tensor, _ = detector.detector.preprocess_image(image)
    loc, conf, landms = detector.model(tensor)
    assert loc.shape[-1] == 4 and conf.shape[-1] == 2 and landms.shape[-1] == 10


@needs_source
def test_optimized_detector_finds_the_onnx_next_to_the_pth(package_models, tmp_path) -> None:
    shutil.copy(SOURCE_MODEL, tmp_path / "retinaface_mobilenet025_coreml.onnx")
    detector = OptimizedFaceDetector(
        str(tmp_path / "Alignment_RetinaFace.pth"), device="cuda", models_dir=package_models
    )
    assert isinstance(detector.detector.session, BucketSession)
    assert detector.detector.onnx_model_path == tmp_path / "retinaface_mobilenet025_coreml.onnx"


def test_unknown_device_lists_the_accepted_ones(package_models) -> None:
    with pytest.raises(ValueError, match=r"unknown device 'mps'; use one of: 'cpu', 'cuda'"):
        OptimizedFaceDetector("weights/x.pth", device="mps", models_dir=package_models)


def test_optimized_detector_falls_back_to_the_packaged_models_like_the_app(
    package_models, tmp_path, caplog
) -> None:
    """The app falls back to PyTorch when its ONNX fails to load; ours to the packaged models."""
    write_relu_onnx(tmp_path / "retinaface_mobilenet025_coreml.onnx")
    caplog.set_level(logging.WARNING)
    detector = OptimizedFaceDetector(
        str(tmp_path / "Alignment_RetinaFace.pth"), models_dir=package_models
    )
    assert isinstance(detector.detector.session, BucketSession) and detector.backend == "onnx"
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "not a RetinaFace model" in warning and "using the packaged models" in warning
