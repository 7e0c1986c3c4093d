"""FaceDetector on the packaged models and the real photos: counts, boxes, formats, errors."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from retinaface_coreml import (
    ArtifactError,
    BackendError,
    Face,
    FaceDetector,
    ImageFormatError,
    UnknownBucketError,
)
from tests.conftest import EXPECTED_FACES, coreml_available, reference_boxes
from tests.runtime.photos import load_photo, unmatched

GROUP_PHOTOS = [name for name in EXPECTED_FACES if name.startswith("faceapi_")]
BUCKETS = ["640x640", "480x640", "640x480", "384x640", "640x384"]
FULL_BUCKETS = ["1080x1920", "1920x1080", "720x1280", "1280x720"]


@pytest.mark.parametrize("name", list(EXPECTED_FACES))
def test_face_count_and_boxes_match_the_reference(detector, name: str) -> None:
    image = load_photo(name)
    faces = detector.detect(image)
    assert len(faces) == EXPECTED_FACES[name]
    assert unmatched([f.box for f in faces], reference_boxes().get(name, [])) == []
    assert all(isinstance(f, Face) for f in faces)
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    height, width = image.shape[:2]
    for face in faces:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert 0.5 < face.score <= 1.0
        assert len(face.landmarks) == 5
        # Eyes, nose and mouth corners lie inside their own face box.
        assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.landmarks)


@pytest.mark.parametrize("bucket", BUCKETS)
def test_every_bucket_finds_every_reference_face(package_models, bucket: str) -> None:
    forced = FaceDetector(bucket=bucket, models_dir=package_models)
    for name, expected in reference_boxes().items():
        faces = forced.detect(load_photo(name))
        assert unmatched([f.box for f in faces], expected) == [], name
        assert forced.bucket == bucket


def test_small_faces_are_found_without_upscaling(detector) -> None:
    # SOURCES.md: the reference finds all 22 group-photo faces at a 320 px long side.
    for name in GROUP_PHOTOS:
        image = load_photo(name)
        scale = 320 / max(image.shape[:2])
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        expected = [[v * scale for v in box] for box in reference_boxes()[name]]
        faces = detector.detect(small)
        assert len(faces) == EXPECTED_FACES[name], name
        assert unmatched([f.box for f in faces], expected) == [], name


def test_boxes_are_clipped_to_the_frame(detector) -> None:
    # Cutting the photo through the lowest face (y 867..1164) leaves it partly outside.
    cut = load_photo("faceapi_sample5.jpg")[:1100]
    faces = detector.detect(cut)
    assert len(faces) == 5
    assert max(f.box[3] for f in faces) == 1100
    assert all(f.box[0] >= 0 and f.box[1] >= 0 and f.box[2] <= 1920 for f in faces)


def test_backend_and_bucket_say_what_ran(package_models) -> None:
    fresh = FaceDetector(models_dir=package_models)
    assert (fresh.backend, fresh.bucket) == (None, None)
    fresh.detect(load_photo("faceapi_sample1.jpg"))  # 1920x1280
    assert (fresh.backend, fresh.bucket) == ("cpu", "384x640")
    fresh.detect(load_photo("skimage_astronaut.png"))
    assert fresh.bucket == "640x640"


def test_gray_gray1_bgra_and_bgr_give_the_same_faces(detector) -> None:
    gray = load_photo("skimage_camera.png", cv2.IMREAD_UNCHANGED)
    assert gray.ndim == 2  # the file itself is grayscale
    bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    reference = detector.detect(bgr)
    assert len(reference) == 1
    for image in (gray, gray[..., None], cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)):
        assert detector.detect(image) == reference


def test_bgra_alpha_is_ignored(detector) -> None:
    bgr = load_photo("faceapi_sample4.jpg")
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    bgra[..., 3] = np.random.default_rng(0).integers(0, 256, bgr.shape[:2], dtype=np.uint8)
    assert detector.detect(bgra) == detector.detect(bgr)


def test_colour_photo_in_gray_still_finds_the_faces(detector) -> None:
    name = "faceapi_sample5.jpg"
    gray = cv2.cvtColor(load_photo(name), cv2.COLOR_BGR2GRAY)
    faces = detector.detect(gray)
    assert unmatched([f.box for f in faces], reference_boxes()[name]) == []


def test_non_contiguous_views_are_accepted(detector) -> None:
    image = load_photo("matplotlib_grace_hopper.jpg")
    flipped = image[:, ::-1]
    faces = detector.detect(flipped)
    assert len(faces) == 1
    x1, _, x2, _ = faces[0].box
    ref = reference_boxes()["matplotlib_grace_hopper.jpg"][0]
    assert abs((image.shape[1] - x2) - ref[0]) < 10 and abs((image.shape[1] - x1) - ref[2]) < 10


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((64, 64, 3), np.float32),
        np.zeros((64, 64, 2), np.uint8),
    ],
    ids=["empty", "float", "two-channel"],
)
def test_bad_images_raise_value_error_naming_the_formats(detector, image) -> None:
    with pytest.raises(ValueError, match=r"HxW \(grayscale\).*HxWx3 \(BGR\).*HxWx4 \(BGRA\)"):
        detector.detect(image)
    with pytest.raises(ImageFormatError):
        detector.detect(image)


def test_unknown_bucket_is_refused_at_construction(package_models) -> None:
    with pytest.raises(UnknownBucketError, match=r"'720x720'.*384x640.*or 'auto' or 'full'"):
        FaceDetector(bucket="720x720", models_dir=package_models)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"score_threshold": 1.5}, r"score_threshold must be a number in \[0, 1\], got 1.5"),
        ({"score_threshold": -0.1}, r"score_threshold .*\[0, 1\]"),
        ({"nms_threshold": float("nan")}, r"nms_threshold .*\[0, 1\]"),
        ({"nms_threshold": "0.4"}, r"nms_threshold .*\[0, 1\], got '0.4'"),
    ],
)
def test_thresholds_are_validated(package_models, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        FaceDetector(models_dir=package_models, **kwargs)


def test_unknown_backend(package_models) -> None:
    with pytest.raises(BackendError, match=r"'gpu'.*auto, cpu, coreml"):
        FaceDetector(backend="gpu", models_dir=package_models)


@pytest.mark.skipif(coreml_available(), reason="this onnxruntime has the CoreML EP")
def test_coreml_where_unavailable_is_a_clear_error(package_models) -> None:
    with pytest.raises(BackendError, match=r"CoreMLExecutionProvider.*'auto' or 'cpu'"):
        FaceDetector(backend="coreml", models_dir=package_models)


def test_thresholds_change_the_result(package_models) -> None:
    image = load_photo("faceapi_sample2.jpg")  # scores 0.999, 0.996, 0.970
    strict = FaceDetector(score_threshold=0.99, models_dir=package_models)
    assert len(strict.detect(image)) == 2
    loose = FaceDetector(score_threshold=0.01, nms_threshold=1.0, models_dir=package_models)
    assert len(loose.detect(image)) > 3


def test_tampered_artifact_is_refused_naming_the_file(tampered_models) -> None:
    models = tampered_models("retinaface/384x640.onnx")
    tampered = FaceDetector(models_dir=models)
    with pytest.raises(ArtifactError, match=r"384x640\.onnx: sha256 .* does not match"):
        tampered.detect(load_photo("faceapi_sample1.jpg"))  # 3:2 runs in 384x640
    # Only the bucket a frame needs is opened, so the untouched ones keep working.
    assert len(tampered.detect(load_photo("skimage_astronaut.png"))) == 1


def test_only_the_bucket_needed_is_read(tampered_models) -> None:
    for name in BUCKETS:
        if name != "640x640":
            models = tampered_models(f"retinaface/{name}.onnx")
    lazy = FaceDetector(models_dir=models)
    assert len(lazy.detect(load_photo("skimage_astronaut.png"))) == 1
    with pytest.raises(ArtifactError, match=r"480x640\.onnx"):
        lazy.warmup()


def test_missing_manifest_names_it(tmp_path) -> None:
    with pytest.raises(ArtifactError, match=r"manifest\.json: no manifest"):
        FaceDetector(models_dir=tmp_path)


def test_missing_model_file_names_it(package_models, tmp_path) -> None:
    models = tmp_path / "models"
    shutil.copytree(package_models, models)
    (models / "retinaface" / "640x640.onnx").unlink()
    with pytest.raises(ArtifactError, match=r"640x640\.onnx: cannot read"):
        FaceDetector(models_dir=models).detect(load_photo("skimage_astronaut.png"))


def test_warmup_reports_each_bucket(package_models) -> None:
    lines: list[str] = []
    fast = FaceDetector(models_dir=package_models)
    fast.warmup(progress=lines.append)
    assert sorted(b.name for b in fast.model.buckets) == sorted(BUCKETS + FULL_BUCKETS)
    assert all(any(name in line for line in lines) for name in BUCKETS), lines
    assert not any(name in line for line in lines for name in FULL_BUCKETS), lines
    lines.clear()
    FaceDetector(bucket="full", models_dir=package_models).warmup(progress=lines.append)
    assert all(any(name in line for line in lines) for name in BUCKETS + FULL_BUCKETS), lines
    lines.clear()
    FaceDetector(bucket="640x384", models_dir=package_models).warmup(progress=lines.append)
    assert any("640x384" in line for line in lines)
    assert not any(name in line for line in lines for name in BUCKETS if name != "640x384")


def test_warmup_reads_each_bucket_once_and_detect_reuses_it(package_models, monkeypatch) -> None:
    from retinaface_coreml.artifacts import Manifest

    reads: list[str] = []
    real = Manifest.load_verified

    def counting(self, relpath, load):
        reads.append(relpath)
        return real(self, relpath, load)

    monkeypatch.setattr(Manifest, "load_verified", counting)
    detector = FaceDetector(backend="cpu", models_dir=package_models)
    detector.warmup()
    assert sorted(reads) == sorted(f"retinaface/{name}.onnx" for name in BUCKETS)
    detector.detect(load_photo("skimage_astronaut.png"))
    assert len(reads) == len(BUCKETS)


def test_face_to_dict(detector) -> None:
    face = detector.detect(load_photo("skimage_astronaut.png"))[0]
    record = face.to_dict(ndigits=2)
    assert set(record) == {"box", "score", "landmarks"}
    assert record["box"] == [round(v, 2) for v in face.box]
    assert record["score"] == round(face.score, 4)
    assert np.asarray(record["landmarks"]).shape == (5, 2)
    assert face.to_dict()["box"] == list(face.box)
    assert face.width == face.box[2] - face.box[0]
