"""ONNXRetinaFaceDetector: the old API's array layout, resize semantics and model path."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from retinaface_coreml import ArtifactError, ONNXRetinaFaceDetector
from tests.conftest import EXPECTED_FACES, ROOT, reference_boxes
from tests.runtime.photos import iou, load_photo, unmatched

SOURCE_MODEL = ROOT / "weights" / "retinaface_mobilenet025.onnx"


@pytest.fixture(scope="module")
def adapter(package_models) -> ONNXRetinaFaceDetector:
    return ONNXRetinaFaceDetector()


def test_rows_are_box_score_landmarks_like_the_detector(adapter, detector) -> None:
    image = load_photo("faceapi_sample5.jpg")
    detections, returned = adapter.detect_faces(image)
    assert returned is image
    assert detections.dtype == np.float32 and detections.shape == (5, 15)
    faces = detector.detect(image)
    for row, face in zip(detections, faces, strict=True):
        np.testing.assert_allclose(row[:4], face.box, rtol=1e-6)
        assert row[4] == pytest.approx(face.score)
        np.testing.assert_allclose(row[5:].reshape(5, 2), face.landmarks, rtol=1e-6)
    assert adapter.backend == "cpu"


@pytest.mark.parametrize("name", list(EXPECTED_FACES))
def test_counts_and_boxes(adapter, name: str) -> None:
    detections, _ = adapter.detect_faces(load_photo(name))
    assert len(detections) == EXPECTED_FACES[name]
    assert unmatched(detections[:, :4].tolist(), reference_boxes().get(name, [])) == []


def test_no_faces_is_an_empty_15_column_array(adapter) -> None:
    detections, _ = adapter.detect_faces(load_photo("skimage_chelsea.png"))
    assert detections.shape == (0, 15) and detections.dtype == np.float32


@pytest.mark.parametrize("resize", [0.5, 0.25])
def test_resize_returns_the_scaled_image_and_its_coordinates(adapter, resize: float) -> None:
    name = "faceapi_sample6.jpg"
    image = load_photo(name)
    detections, returned = adapter.detect_faces(image, resize=resize)
    assert returned.shape == (round(1537 * resize), round(1920 * resize), 3)
    expected = [[v * resize for v in box] for box in reference_boxes()[name]]
    assert len(detections) == 4
    assert unmatched(detections[:, :4].tolist(), expected) == []
    # Landmarks are in the returned image's pixels too: inside their own boxes.
    for row in detections:
        points = row[5:].reshape(5, 2)
        assert (points[:, 0] >= row[0]).all() and (points[:, 0] <= row[2]).all()
        assert (points[:, 1] >= row[1]).all() and (points[:, 1] <= row[3]).all()


def test_upscaling_resize_keeps_coordinates_in_the_returned_image(adapter) -> None:
    name = "skimage_astronaut.png"
    detections, returned = adapter.detect_faces(load_photo(name), resize=2.0)
    assert returned.shape == (1024, 1024, 3)
    expected = [v * 2 for v in reference_boxes()[name][0]]
    assert len(detections) == 1 and iou(detections[0, :4].tolist(), expected) >= 0.5


@pytest.mark.parametrize("resize", [0, -1.0, float("nan"), "1"])
def test_bad_resize(adapter, resize) -> None:
    with pytest.raises(ValueError, match="resize must be a number > 0"):
        adapter.detect_faces(load_photo("skimage_astronaut.png"), resize=resize)


def test_bad_image_names_the_formats(adapter) -> None:
    with pytest.raises(ValueError, match="HxWx3"):
        adapter.detect_faces(np.zeros((10, 10, 2), np.uint8))


def test_thresholds_are_passed_and_validated(package_models) -> None:
    strict = ONNXRetinaFaceDetector(confidence_threshold=0.99, use_coreml=False)
    detections, _ = strict.detect_faces(load_photo("faceapi_sample2.jpg"))
    assert len(detections) == 2 and (detections[:, 4] > 0.99).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ONNXRetinaFaceDetector(confidence_threshold=2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ONNXRetinaFaceDetector(nms_threshold=-1)


@pytest.mark.skipif(not SOURCE_MODEL.exists(), reason="run `make models` (toolchain fetch) first")
def test_own_model_path_runs_full_resolution_on_cpu(package_models, caplog) -> None:
    caplog.set_level(logging.INFO, logger="retinaface_coreml.adapter")
    own = ONNXRetinaFaceDetector(onnx_model_path=SOURCE_MODEL)
    assert "full resolution" in caplog.text and str(SOURCE_MODEL) in caplog.text
    assert own.backend == "cpu"
    # SOURCES.md's boxes come from this model at full resolution: each is found almost exactly.
    # (Here it also scores 0.71 and 0.61 on background clutter left of the first face in
    # faceapi_sample1.jpg, which the packaged 640-sided buckets do not, so counts are not
    # compared.)
    for name, expected in reference_boxes().items():
        detections, _ = own.detect_faces(load_photo(name))
        for box in expected:
            assert max(iou(box, row[:4].tolist()) for row in detections) >= 0.9, name
    assert len(own.detect_faces(load_photo("skimage_chelsea.png"))[0]) == 0


def test_own_model_path_that_is_not_a_model(tmp_path) -> None:
    missing = tmp_path / "missing.onnx"
    with pytest.raises(ArtifactError, match=r"missing\.onnx: cannot load"):
        ONNXRetinaFaceDetector(onnx_model_path=missing)
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    with pytest.raises(ArtifactError, match=r"notes\.onnx: cannot load"):
        ONNXRetinaFaceDetector(onnx_model_path=text)
