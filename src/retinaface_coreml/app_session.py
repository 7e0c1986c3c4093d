"""``detector.session`` for the app's classes: ``run(None, {"input": nchw})`` on the buckets.

The app's code feeds the network a mean-subtracted [N, 3, H, W] float32 tensor of any size and
reads ``loc``, ``conf`` and ``landms`` for that size's anchors. A tensor of a bucket's exact
size runs in that bucket (the same numbers as the dynamic-shape model). Any other size runs in
the source ONNX on the CPU when the detector was given its path (exact, at the app's speed);
without it, the tensor is padded into the smallest bucket that holds it and each output keeps
the anchors of the unpadded size (the bucket's grid cut to the tensor's rows and columns per
stride; values near the padded edge differ). A tensor larger than every bucket, with no path,
is refused with a ValueError saying so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from retinaface_coreml.artifacts import BucketInfo, DetectorInfo
from retinaface_coreml.buckets import exact_bucket, fitting_bucket
from retinaface_coreml.packaged.backends import COREML_EP, CPU_EP, Runner

# The app's export names the landmark output `landms`; the packaged buckets call it
# `landmarks`. Either name asks for the same array.
ALIASES = {"landms": "landmarks", "landmarks": "landms"}


def crop_anchors(
    output: np.ndarray,
    *,
    bucket: tuple[int, int],
    frame: tuple[int, int],
    strides: Sequence[int],
    min_sizes: Sequence[Sequence[int]],
) -> np.ndarray:
    """One image's (anchors, C) output for a ``bucket`` (H, W) input, cut to ``frame`` (h, w).

    Anchors are ordered stride by stride, then rows, columns and sizes (``decode.prior_boxes``),
    so a top-left aligned frame keeps the first ``ceil(h / s)`` rows and ``ceil(w / s)``
    columns of each stride's grid.
    """
    parts, start = [], 0
    for stride, sizes in zip(strides, min_sizes, strict=True):
        rows, cols = math.ceil(bucket[0] / stride), math.ceil(bucket[1] / stride)
        count = rows * cols * len(sizes)
        level = output[start : start + count].reshape(rows, cols, len(sizes), -1)
        keep = level[: math.ceil(frame[0] / stride), : math.ceil(frame[1] / stride)]
        parts.append(keep.reshape(-1, output.shape[-1]))
        start += count
    if start != output.shape[0]:
        raise ValueError(f"{output.shape[0]} anchors in the output, {start} expected for {bucket}")
    return np.concatenate(parts)


class BucketSession:
    """The parts of ``onnxruntime.InferenceSession`` the app's code uses, on the buckets.

    ``runner_for`` opens (or returns the open) runner of a bucket; ``source`` runs the source
    ONNX at any size on the CPU (None when the detector was not given its path).
    """

    def __init__(
        self,
        *,
        model: DetectorInfo,
        buckets: Sequence[BucketInfo],
        runner_for: Callable[[BucketInfo], Runner],
        providers: Callable[[], list[str]],
        source: Runner | None = None,
    ) -> None:
        self._model = model
        self._buckets = tuple(buckets)
        self._runner_for = runner_for
        self._providers = providers
        self._source = source

    def get_providers(self) -> list[str]:
        """``["CoreMLExecutionProvider", "CPUExecutionProvider"]`` on CoreML, else the CPU's."""
        return self._providers()

    def run(
        self,
        output_names: Sequence[str] | None,
        input_feed: Mapping[str, Any],
        run_options: object = None,
    ) -> list[np.ndarray]:
        """Outputs for an [N, 3, H, W] float32 tensor, as the dynamic-shape model returns them."""
        del run_options  # accepted for the signature; the buckets take none
        tensor = self._input(input_feed)
        names = self._names(output_names)
        per_image = [self._run_one(tensor[i : i + 1]) for i in range(tensor.shape[0])]
        return [np.concatenate([outputs[index] for outputs in per_image]) for index in names]

    def _input(self, input_feed: Mapping[str, Any]) -> np.ndarray:
        name = self._model.input
        if set(input_feed) != {name}:
            raise ValueError(f"expected one input named {name!r}, got {sorted(input_feed)}")
        tensor = np.asarray(input_feed[name], dtype=np.float32)
        if tensor.ndim != 4 or tensor.shape[1] != 3 or 0 in tensor.shape:
            raise ValueError(
                f"input {name!r} must be a [N, 3, H, W] float32 tensor, got shape {tensor.shape}"
            )
        return tensor

    def _names(self, output_names: Sequence[str] | None) -> list[int]:
        outputs = list(self._model.outputs)
        if output_names is None:
            return list(range(len(outputs)))
        indices = []
        for name in output_names:
            for candidate in (name, ALIASES.get(name)):
                if candidate in outputs:
                    indices.append(outputs.index(candidate))
                    break
            else:
                raise ValueError(f"no output named {name!r}; the outputs are {outputs}")
        return indices

    def _run_one(self, tensor: np.ndarray) -> list[np.ndarray]:
        height, width = tensor.shape[2:]
        exact = exact_bucket(self._buckets, height, width)
        if exact is None and self._source is not None:
            return self._source.run({self._model.input: np.ascontiguousarray(tensor)})
        bucket = exact or fitting_bucket(self._buckets, height, width)
        if bucket.height < height or bucket.width < width:
            largest = max(self._buckets, key=lambda b: b.height * b.width).name
            raise ValueError(
                f"input {height}x{width} is larger than every packaged bucket (largest "
                f"{largest}); pass the source model's path as onnx_model_path to run it "
                "on the CPU, or resize the frame"
            )
        padded = np.zeros((1, 3, bucket.height, bucket.width), dtype=np.float32)
        padded[:, :, :height, :width] = tensor
        outputs = self._runner_for(bucket).run({self._model.input: padded})
        return [
            crop_anchors(
                output[0],
                bucket=(bucket.height, bucket.width),
                frame=(height, width),
                strides=self._model.strides,
                min_sizes=self._model.min_sizes,
            )[None]
            for output in outputs
        ]


def providers_for(backend: str | None) -> list[str]:
    """The provider list ``session.get_providers()`` reports for a runner backend name."""
    return [COREML_EP, CPU_EP] if backend == "coreml" else [CPU_EP]
