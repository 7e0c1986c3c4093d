"""Input checks and letterboxing: a frame in, the network's [1, 3, H, W] float32 tensor out."""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from retinaface_coreml.errors import ImageFormatError

ACCEPTED_FORMATS = (
    "a numpy uint8 array shaped HxW (grayscale), HxWx1 (grayscale), HxWx3 (BGR) or HxWx4 (BGRA)"
)


FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_image(image: object, *, allow_float: bool = False) -> np.ndarray:
    """Return ``image`` if the detector can take it, else raise ImageFormatError saying why.

    ``allow_float`` also takes float32/float64 pixels in 0-255 (the app's classes accept them).
    """
    if not isinstance(image, np.ndarray):
        raise ImageFormatError(f"expected {ACCEPTED_FORMATS}; got {type(image).__name__}")
    if image.dtype != np.uint8 and not (allow_float and image.dtype in FLOAT_DTYPES):
        hint = " (scale floats in [0, 1] with (img * 255).round().astype(np.uint8))"
        raise ImageFormatError(
            f"image dtype {image.dtype} is not supported; expected {ACCEPTED_FORMATS}"
            + (hint if image.dtype.kind == "f" else "")
        )
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ImageFormatError(
            f"image shape {image.shape} is not supported; expected {ACCEPTED_FORMATS}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageFormatError(f"image is empty (shape {image.shape}); expected {ACCEPTED_FORMATS}")
    return image


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Three BGR channels from a checked gray, BGR or BGRA image."""
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def scaled_size(height: int, width: int, resize: float) -> tuple[int, int]:
    """A frame's size scaled by ``resize``, rounded as cv2's ``fx``/``fy`` resize rounds it.

    e.g. ``(1537, 1920, 0.5)`` -> ``(768, 960)``.
    """
    return max(1, round(height * resize)), max(1, round(width * resize))


# A NamedTuple: cheap to define on the startup path (see the package docstring).
class Letterbox(NamedTuple):
    """How a frame maps into the network input: frame pixel = network pixel / scale.

    The resized frame sits in the top-left corner; ``scale_x``/``scale_y`` are the exact
    per-axis factors after rounding (e.g. 1920x1080 into 384x640 gives 640/1920 and 360/1080).
    """

    scale_x: float
    scale_y: float
    width: int
    height: int


def letterbox(
    image: np.ndarray,
    height: int,
    width: int,
    mean_bgr: tuple[float, float, float],
    *,
    max_scale: float = 1.0,
    allow_float: bool = False,
) -> tuple[np.ndarray, Letterbox]:
    """Shrink ``image`` to fit ``height`` x ``width`` keeping its aspect ratio, pad, normalise.

    The frame is scaled by ``max_scale`` (the app's ``resize``), or less when that does not
    fit. By default smaller frames are padded, never enlarged: upscaling adds no detail and
    produced a false positive on the cat photo (skimage_chelsea.png) in every bucket. Returns
    the [1, 3, height, width] float32 tensor (BGR minus ``mean_bgr``, padding 0) and the
    mapping back to frame pixels.
    """
    image = check_image(image, allow_float=allow_float)
    if image.dtype == np.float64:
        image = image.astype(np.float32)  # cv2's colour conversions take float32, not float64
    frame_h, frame_w = image.shape[:2]
    scale = min(max_scale, height / frame_h, width / frame_w)
    new_h = min(height, max(1, round(frame_h * scale)))
    new_w = min(width, max(1, round(frame_w * scale)))
    scale_x, scale_y = new_w / frame_w, new_h / frame_h
    at_max_h, at_max_w = scaled_size(frame_h, frame_w, max_scale)
    # Compared after rounding: 1537 rows at 0.5 are 768, which fits 768 though 768/1537 < 0.5.
    if max_scale != 1.0 and at_max_h <= height and at_max_w <= width:
        # The app's resize, exactly (pyfaceau): a float32 copy scaled by fx = fy = resize, which
        # cv2 samples at exactly 1/resize; coordinates go back by dividing by resize. (uint8
        # resizing rounds each pixel and moved boxes by up to 4 px at resize 0.5.)
        image = cv2.resize(
            image.astype(np.float32, copy=False),
            None,
            fx=max_scale,
            fy=max_scale,
            interpolation=cv2.INTER_LINEAR,
        )
        new_h, new_w = image.shape[:2]
        scale_x = scale_y = max_scale
    elif (new_h, new_w) != (frame_h, frame_w):
        # INTER_LINEAR, not INTER_AREA: 0.35 vs 1.94 ms for 1920x1080 -> 640x360 (5 vs 0.4 ms
        # from 1920x1448), with the same 25/25 faces and no false positive on the test photos at
        # full size and shrunk to 0.5 and 0.3 (benchmarks/accuracy.py measures it).
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    bgr = to_bgr(image)
    tensor = np.zeros((1, 3, height, width), dtype=np.float32)
    mean = np.asarray(mean_bgr, dtype=np.float32)
    # One contiguous plane per channel, subtracted straight into the tensor: 6x faster than
    # subtracting HxWx3 and copying its CHW transpose (0.23 vs 1.4 ms at 640x360), same values.
    for channel, plane in enumerate(cv2.split(bgr)):
        np.subtract(plane, mean[channel], out=tensor[0, channel, :new_h, :new_w], dtype=np.float32)
    return tensor, Letterbox(scale_x=scale_x, scale_y=scale_y, width=frame_w, height=frame_h)
