"""The numerical check: the same random inputs through two models on ORT's CPU EP."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx

from retinaface_coreml_toolchain.errors import ModelError

CHECK_INPUTS = 20
TOLERANCE = 1e-4  # max |diff| allowed, as a fraction of the output's max |value|
SCALES = (1.0, 0.1, 10.0, 3.0)


@dataclass(frozen=True, kw_only=True)
class Difference:
    """One output compared over every check input."""

    output: str
    max_abs_diff: float
    max_abs_value: float

    @property
    def relative(self) -> float:
        """max |diff| / max |value| (inf when the reference is all zeros and they differ)."""
        if self.max_abs_diff == 0:
            return 0.0
        return self.max_abs_diff / self.max_abs_value if self.max_abs_value else float("inf")


def check_feeds(
    shapes: Mapping[str, tuple[int, ...]],
    dtypes: Mapping[str, np.dtype],
    *,
    count: int = CHECK_INPUTS,
    seed: int = 0,
) -> list[dict[str, np.ndarray]]:
    """``count`` input sets: all zeros, all -1, small integers (ties), then scaled normals.

    Integer and bool inputs get zeros, then random 0/1.
    """
    rng = np.random.default_rng(seed)
    feeds = []
    for i in range(count):
        feed = {}
        for name, shape in shapes.items():
            if not np.issubdtype(dtypes[name], np.floating):
                # Integer and bool inputs are usually indices or flags: 0 and 1 only.
                feed[name] = (np.zeros(shape) if i == 0 else rng.integers(0, 2, size=shape)).astype(
                    dtypes[name]
                )
                continue
            if i == 0:
                value = np.zeros(shape)
            elif i == 1:
                value = -np.ones(shape)
            elif i == 2:
                value = rng.integers(-2, 3, size=shape)
            else:
                value = rng.standard_normal(shape) * SCALES[i % len(SCALES)]
            feed[name] = value.astype(dtypes[name])
        feeds.append(feed)
    return feeds


def input_dtypes(model: onnx.ModelProto) -> dict[str, np.dtype]:
    from onnx.helper import tensor_dtype_to_np_dtype

    return {
        info.name: tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)
        for info in model.graph.input
    }


def run_all(
    model: onnx.ModelProto, feeds: list[dict[str, np.ndarray]], *, name: str
) -> dict[str, np.ndarray]:
    """Each output stacked over the feeds (ORT CPU, level-1 optimisations as the EP sees)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        names = [o.name for o in session.get_outputs()]
        wanted = {i.name for i in session.get_inputs()}
        runs = [session.run(names, {k: v for k, v in f.items() if k in wanted}) for f in feeds]
    except Exception as exc:  # ORT raises Fail, InvalidArgument, RuntimeException, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{name}: onnxruntime cannot run it on the check "
            f"inputs ({first}); give --input-shape values the model accepts"
        ) from exc
    return {name: np.stack([r[i] for r in runs]) for i, name in enumerate(names)}


def compare(
    reference: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray]
) -> tuple[Difference, ...]:
    """Per output of ``reference``: the largest |diff| and the largest |reference value|.

    NaN in the same place in both counts as equal; NaN in one only counts as an infinite diff.
    """
    diffs = []
    for name, ref in reference.items():
        ref64 = ref.astype(np.float64)
        other = got[name].astype(np.float64)
        both_nan = np.isnan(ref64) & np.isnan(other)
        delta = np.where(both_nan, 0.0, np.abs(ref64 - other))
        delta = np.where(np.isnan(delta), np.inf, delta)
        finite = np.abs(ref64[np.isfinite(ref64)])
        diffs.append(
            Difference(
                output=name,
                max_abs_diff=float(delta.max(initial=0.0)),
                max_abs_value=float(finite.max(initial=0.0)),
            )
        )
    return tuple(diffs)


def worst(diffs: tuple[Difference, ...]) -> Difference | None:
    """The output with the largest relative difference."""
    return max(diffs, key=lambda d: d.relative, default=None)
