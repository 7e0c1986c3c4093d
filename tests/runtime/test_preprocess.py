"""preprocess: accepted formats, letterbox geometry and normalisation (no ONNX Runtime)."""

from __future__ import annotations

import numpy as np
import pytest

from retinaface_coreml.errors import ImageFormatError
from retinaface_coreml.preprocess import ACCEPTED_FORMATS, check_image, letterbox

MEAN = (104.0, 117.0, 123.0)


@pytest.mark.parametrize(
    ("image", "why"),
    [
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((10, 0), np.uint8), "empty"),
        (np.zeros((8, 8, 3), np.float32), "float32"),
        (np.zeros((8, 8, 3), np.uint16), "uint16"),
        (np.zeros((8, 8, 2), np.uint8), "(8, 8, 2)"),
        (np.zeros((8,), np.uint8), "(8,)"),
        (np.zeros((2, 8, 8, 3), np.uint8), "(2, 8, 8, 3)"),
        ([[0, 1], [2, 3]], "list"),
    ],
)
def test_check_image_refuses_naming_the_accepted_formats(image, why) -> None:
    with pytest.raises(ValueError, match="HxWx3") as info:
        check_image(image)
    assert isinstance(info.value, ImageFormatError)
    assert ACCEPTED_FORMATS in str(info.value)
    assert why in str(info.value)


def test_float_image_hint_says_how_to_convert() -> None:
    with pytest.raises(ImageFormatError, match=r"astype\(np.uint8\)"):
        check_image(np.zeros((4, 4, 3), np.float64))


@pytest.mark.parametrize("shape", [(6, 5), (6, 5, 1), (6, 5, 3), (6, 5, 4)])
def test_check_image_accepts(shape) -> None:
    image = np.zeros(shape, np.uint8)
    assert check_image(image) is image


def test_letterbox_shrinks_keeping_aspect_and_pads_with_zero() -> None:
    frame = np.full((1080, 1920, 3), 200, np.uint8)
    tensor, box = letterbox(frame, 384, 640, MEAN)
    assert tensor.shape == (1, 3, 384, 640) and tensor.dtype == np.float32
    assert (box.scale_x, box.scale_y) == (640 / 1920, 360 / 1080)
    assert (box.width, box.height) == (1920, 1080)
    np.testing.assert_array_equal(
        tensor[0, :, :360, :],
        np.broadcast_to((200 - np.asarray(MEAN, np.float32))[:, None, None], (3, 360, 640)),
    )
    assert not tensor[0, :, 360:, :].any()


def test_letterbox_never_upscales_small_frames() -> None:
    frame = np.random.default_rng(0).integers(0, 256, (100, 200, 3), dtype=np.uint8)
    tensor, box = letterbox(frame, 640, 640, MEAN)
    assert (box.scale_x, box.scale_y) == (1.0, 1.0)
    expected = frame.astype(np.float32) - np.asarray(MEAN, np.float32)
    np.testing.assert_array_equal(tensor[0].transpose(1, 2, 0)[:100, :200], expected)
    assert not tensor[0, :, 100:, :].any() and not tensor[0, :, :, 200:].any()


def test_letterbox_keeps_bgr_channel_order() -> None:
    frame = np.zeros((4, 4, 3), np.uint8)
    frame[..., 0] = 255  # blue
    tensor, _ = letterbox(frame, 32, 32, (0.0, 0.0, 0.0))
    assert tensor[0, 0, 0, 0] == 255 and tensor[0, 1, 0, 0] == 0 and tensor[0, 2, 0, 0] == 0


def test_gray_bgra_and_bgr_give_the_same_tensor() -> None:
    gray = np.random.default_rng(1).integers(0, 256, (700, 500), dtype=np.uint8)
    bgr = np.repeat(gray[..., None], 3, axis=2)
    bgra = np.concatenate([bgr, np.full((700, 500, 1), 7, np.uint8)], axis=2)
    reference, _ = letterbox(bgr, 640, 480, MEAN)
    for image in (gray, gray[..., None], bgra):
        tensor, _ = letterbox(image, 640, 480, MEAN)
        np.testing.assert_array_equal(tensor, reference)
