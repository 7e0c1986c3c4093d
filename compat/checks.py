"""The API calls the harness makes on both sides, as the app's callers make them.

Every call form of ``ONNXRetinaFaceDetector`` and ``OptimizedFaceDetector`` (positional,
keyword, defaults, bad paths), their attributes, ``session.run`` / ``session.get_providers``,
``preprocess_image``, ``detect_faces``, ``get_face`` and ``OptimizedFaceDetector.model``. Each
probe returns a summary of facts the default judge compares; numbers (faces, boxes) are the
Numbers table's job, not this one's.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from compat.api import (
    DIFFERS,
    ERROR,
    WORKS,
    Check,
    Outcome,
    Verdict,
    difference,
    same_as_app,
)

MISSING = "<missing>"
THRESHOLDS = ("confidence_threshold", "nms_threshold", "vis_threshold")
# OptimizedFaceDetector looks for this file next to model_path when onnx_model_path is None.
APP_DEFAULT_ONNX = "retinaface_mobilenet025_coreml.onnx"
MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


@dataclass(frozen=True, kw_only=True)
class ModelPaths:
    """``onnx``: the source weights; ``pth``: a .pth path (never read on the CPU path) whose
    folder holds a copy of them under the app's default name, e.g. ``/tmp/x/Alignment.pth``."""

    onnx: Path
    pth: Path
    missing: Path
    not_onnx: Path


class Driver:
    """One side: its module (the app's file, or ``retinaface_coreml``) and detectors made once."""

    def __init__(self, name: str, module: ModuleType, paths: ModelPaths) -> None:
        self.name = name
        self.module = module
        self.paths = paths

    @cached_property
    def default(self) -> Any:
        """``ONNXRetinaFaceDetector(path)``: every other argument at its default."""
        return self.module.ONNXRetinaFaceDetector(str(self.paths.onnx))

    @cached_property
    def optimized(self) -> Any:
        """``OptimizedFaceDetector(model_path, onnx_model_path=path)``."""
        return self.module.OptimizedFaceDetector(
            str(self.paths.pth), onnx_model_path=str(self.paths.onnx)
        )


def nchw(image: np.ndarray) -> np.ndarray:
    """The network input the app feeds ``session.run``: BGR float32 minus the mean, (1, 3, H, W)."""
    return np.ascontiguousarray((np.float32(image) - MEAN_BGR).transpose(2, 0, 1)[None])


def signature(function: Any) -> list[tuple[str, str, str | None]]:
    """Parameter names, kinds and default reprs, ``self`` left out."""
    return [
        (p.name, p.kind.name, None if p.default is inspect.Parameter.empty else repr(p.default))
        for p in inspect.signature(function).parameters.values()
        if p.name != "self"
    ]


def settings(detector: Any) -> dict[str, Any]:
    """Thresholds and backend as the caller reads them (``<missing>`` where absent)."""
    return {name: getattr(detector, name, MISSING) for name in (*THRESHOLDS, "backend")}


def detected(run: Callable[[np.ndarray], Any], frame: np.ndarray) -> dict[str, Any]:
    """Call ``run(frame)`` (a ``detect_faces``) and summarise what it returns: types, dtype and
    layout; whether the returned frame is a copy equal to the input; the input left untouched."""
    before = frame.copy()
    dets, image = result = run(frame)
    return {
        "returns": f"{type(result).__name__} of {len(result)}",
        "dets": f"{type(dets).__name__} {dets.dtype} {dets.ndim}-D, {dets.shape[-1]} columns",
        "frame": f"{image.dtype} {image.shape}",
        "frame is a copy": not np.shares_memory(image, frame),
        "frame equals input": bool(np.array_equal(image, before)),
        "input untouched": bool(np.array_equal(frame, before)),
    }


def face_summary(result: Any) -> dict[str, Any]:
    face, dets = result
    return {
        "face": None if face is None else f"{face.dtype} {face.shape}",
        "dets": None if dets is None else f"{dets.dtype} {dets.ndim}-D, {dets.shape[-1]} columns",
    }


def preprocess_summary(result: Any, frame: np.ndarray) -> dict[str, Any]:
    tensor, raw = result
    return {
        "tensor": tensor,
        "raw is a copy": not np.shares_memory(raw, frame),
        "raw equals input": bool(np.array_equal(raw, frame)),
    }


def signature_compatible(app: Outcome, ours: Outcome) -> Verdict:
    """Every app parameter in place with its kind and default; ours may add a default to a
    required one, or add parameters that have defaults (the app's callers never pass them)."""
    if not (app.ok and ours.ok):
        return same_as_app(app, ours)
    notes = []
    for k, (name, kind, default) in enumerate(app.value):
        if k >= len(ours.value):
            return Verdict(status=DIFFERS, note=f"ours lacks {name}")
        our_name, our_kind, our_default = ours.value[k]
        if (our_name, our_kind) != (name, kind):
            return Verdict(status=DIFFERS, note=f"parameter {k} is {our_name}, app {name}")
        if default is not None and our_default != default:
            return Verdict(status=DIFFERS, note=f"{name} defaults to {our_default}, app {default}")
        if default is None and our_default is not None:
            notes.append(f"{name} defaults to {our_default}")
    for name, kind, default in ours.value[len(app.value) :]:
        if default is None:
            return Verdict(status=ERROR, note=f"ours requires an extra parameter {name}")
        notes.append(f"adds {name}={default} ({kind.lower().replace('_', '-')})")
    return Verdict(status=WORKS, note=("ours: " + "; ".join(notes)) if notes else "")


def frame_is_input(app: Outcome, ours: Outcome) -> Verdict:
    """float32 frames: the app's ``np.float32(copy)`` is no copy for float32 input, so its
    in-place mean subtraction lands in the frame it returns; ours returns the frame as given."""
    if app.ok and ours.ok and not app.value["frame equals input"]:
        found = difference({**app.value, "frame equals input": True}, ours.value)
        if found is None:
            return Verdict(
                status=DIFFERS,
                note="by design: the app returns its frame minus the mean (in-place on "
                "np.float32 of a float32 copy); ours returns the frame",
            )
    return same_as_app(app, ours)


def raises_like_app(app: Outcome, ours: Outcome) -> Verdict:
    """Bad model paths: both must raise an ``Exception`` (the app's callers catch that) and our
    message must name the file."""
    if app.ok:
        return same_as_app(app, ours)
    if ours.ok:
        return Verdict(status=ERROR, note="the app raises; ours accepts the path")
    path_named = str(app.error).split(":")[0] in str(ours.error) or "/" in str(ours.error)
    note = f"both raise ({type(app.error).__name__} / {type(ours.error).__name__})"
    if not path_named:
        return Verdict(status=DIFFERS, note=f"{note}; our message does not name the file")
    return Verdict(status=WORKS, note=note)


def resize_means_original(app: Outcome, ours: Outcome) -> Verdict:
    """``resize != 1``: the app raises (priors built for the unresized frame); its code means
    original-frame coordinates and the original frame, which ours must return."""
    if ours.ok and ours.value.get("frame equals input") and ours.value.get("frame is a copy"):
        why = "app raises (its priors are for the unresized frame)" if not app.ok else "app works"
        return Verdict(
            status=DIFFERS if not app.ok else WORKS,
            note=f"by design: {why}; ours returns original-frame pixels and a copy of the frame",
        )
    return Verdict(
        status=ERROR, note="should return the original frame (a copy) and original-frame pixels"
    )


def device_is_checked(app: Outcome, ours: Outcome) -> Verdict:
    """An unknown ``device``: the app silently treats it as the CPU; ours may refuse it with a
    ValueError listing the accepted values (issue 8)."""
    if not ours.ok and isinstance(ours.error, ValueError) and "cpu" in str(ours.error):
        return Verdict(status=DIFFERS, note="by design: ours raises a ValueError listing devices")
    return same_as_app(app, ours)


def no_path_is_packaged(app: Outcome, ours: Outcome) -> Verdict:
    """No path: a TypeError in the app; ours may serve its packaged buckets instead."""
    if not app.ok and ours.ok:
        return Verdict(status=DIFFERS, note="by design: ours uses its packaged models")
    return same_as_app(app, ours)


def model_call_summary(outputs: Any) -> dict[str, Any]:
    return {
        "returns": type(outputs).__name__,
        "items": [f"{type(o).__module__}.{type(o).__name__}" for o in outputs],
        "values": [o.numpy() for o in outputs],
    }


def checks(images: dict[str, np.ndarray], paths: ModelPaths) -> list[Check]:
    """Every call, in the order the table lists them."""
    import torch  # the app's OptimizedFaceDetector.model takes and returns torch tensors

    photo = images["faceapi_sample2.jpg"]
    small = images["matplotlib_grace_hopper.jpg"]  # 512x600: no side a multiple of 32
    hd = images["1080p frame"]
    cat = images["skimage_chelsea.png"]

    def onnx_class(d: Driver) -> Any:
        return d.module.ONNXRetinaFaceDetector

    def optimized_class(d: Driver) -> Any:
        return d.module.OptimizedFaceDetector

    rows: list[Check] = [
        Check(call="import ONNXRetinaFaceDetector", probe=lambda d: onnx_class(d).__name__),
        Check(call="import OptimizedFaceDetector", probe=lambda d: optimized_class(d).__name__),
    ]
    for method in ("__init__", "preprocess_image", "detect_faces", "get_face"):
        rows.append(
            Check(
                call=f"ONNXRetinaFaceDetector.{method} signature",
                probe=lambda d, m=method: signature(getattr(onnx_class(d), m)),
                judge=signature_compatible,
            )
        )
    for method in ("__init__", "detect_faces", "get_face"):
        rows.append(
            Check(
                call=f"OptimizedFaceDetector.{method} signature",
                probe=lambda d, m=method: signature(getattr(optimized_class(d), m)),
                judge=signature_compatible,
            )
        )
    rows += [
        Check(call="ONNXRetinaFaceDetector(path)", probe=lambda d: settings(d.default)),
        Check(
            call="ONNXRetinaFaceDetector(path, False, 0.5, 0.3, 0.6)",
            probe=lambda d: settings(onnx_class(d)(str(d.paths.onnx), False, 0.5, 0.3, 0.6)),
        ),
        Check(
            call="ONNXRetinaFaceDetector(path, use_coreml=True, 3 thresholds by keyword)",
            probe=lambda d: settings(
                onnx_class(d)(
                    str(d.paths.onnx),
                    use_coreml=True,
                    confidence_threshold=0.02,
                    nms_threshold=0.4,
                    vis_threshold=0.5,
                )
            ),
        ),
        Check(
            call="ONNXRetinaFaceDetector(onnx_model_path=path, confidence_threshold=0.5)",
            probe=lambda d: settings(
                onnx_class(d)(onnx_model_path=str(d.paths.onnx), confidence_threshold=0.5)
            ),
        ),
        Check(
            call="ONNXRetinaFaceDetector()",
            probe=lambda d: settings(onnx_class(d)()),
            judge=no_path_is_packaged,
        ),
        Check(
            call="ONNXRetinaFaceDetector(missing path)",
            probe=lambda d: settings(onnx_class(d)(str(d.paths.missing))),
            judge=raises_like_app,
        ),
        Check(
            call="ONNXRetinaFaceDetector(a PNG's path)",
            probe=lambda d: settings(onnx_class(d)(str(d.paths.not_onnx))),
            judge=raises_like_app,
        ),
    ]
    for name in (*THRESHOLDS, "backend"):
        rows.append(
            Check(
                call=f"ONNXRetinaFaceDetector .{name}",
                probe=lambda d, n=name: getattr(d.default, n),
            )
        )
    rows += [
        Check(call="ONNXRetinaFaceDetector .cfg", probe=lambda d: dict(d.default.cfg)),
        Check(
            call="ONNXRetinaFaceDetector methods callable",
            probe=lambda d: {
                m: callable(getattr(d.default, m, None))
                for m in ("preprocess_image", "detect_faces", "get_face")
            },
        ),
        Check(
            call="session.get_providers()", probe=lambda d: list(d.default.session.get_providers())
        ),
        Check(
            call="session.run(None, {'input': nchw}) 512x600",
            probe=lambda d: d.default.session.run(None, {"input": nchw(small)}),
        ),
        Check(
            call="session.run(None, {'input': nchw}) 1920x1080",
            probe=lambda d: d.default.session.run(None, {"input": nchw(hd)}),
        ),
        Check(
            call="preprocess_image(img)",
            probe=lambda d: preprocess_summary(d.default.preprocess_image(small), small),
        ),
        Check(
            call="preprocess_image(img, 0.5)",
            probe=lambda d: preprocess_summary(d.default.preprocess_image(small, 0.5), small),
        ),
        Check(
            call="detect_faces(uint8 img)",
            probe=lambda d: detected(d.default.detect_faces, photo),
        ),
        Check(
            call="detect_faces(img, resize=1.0) 1920x1080",
            probe=lambda d: detected(lambda f: d.default.detect_faces(f, resize=1.0), hd),
        ),
        Check(
            call="detect_faces(float32 img)",
            probe=lambda d: detected(d.default.detect_faces, np.float32(small)),
            judge=frame_is_input,
        ),
        Check(
            call="detect_faces(img, 0.5)",
            probe=lambda d: detected(lambda f: d.default.detect_faces(f, 0.5), photo),
            judge=resize_means_original,
        ),
        Check(call="get_face(img)", probe=lambda d: face_summary(d.default.get_face(photo))),
        Check(
            call="get_face(cat photo: no face >= vis 0.5)",
            probe=lambda d: face_summary(d.default.get_face(cat)),
        ),
        Check(
            call="OptimizedFaceDetector(model_path, onnx_model_path=path)",
            probe=lambda d: {
                **settings(d.optimized),
                "detector": type(d.optimized.detector).__name__,
            },
        ),
        Check(
            call="OptimizedFaceDetector(model_path=, onnx_model_path=, device=, 3 thresholds=)",
            probe=lambda d: settings(
                optimized_class(d)(
                    model_path=str(d.paths.pth),
                    onnx_model_path=str(d.paths.onnx),
                    device="cpu",
                    confidence_threshold=0.5,
                    nms_threshold=0.3,
                    vis_threshold=0.6,
                )
            ),
        ),
        Check(
            call="OptimizedFaceDetector(model_path, path, 'cpu', 0.5, 0.3, 0.6)",
            probe=lambda d: settings(
                optimized_class(d)(str(d.paths.pth), str(d.paths.onnx), "cpu", 0.5, 0.3, 0.6)
            ),
        ),
        Check(
            call=f"OptimizedFaceDetector(model_path) ({APP_DEFAULT_ONNX} beside it)",
            probe=lambda d: settings(optimized_class(d)(str(d.paths.pth))),
        ),
        Check(
            call="OptimizedFaceDetector(model_path, path, device='tpu')",
            probe=lambda d: settings(
                optimized_class(d)(str(d.paths.pth), str(d.paths.onnx), "tpu")
            ),
            judge=device_is_checked,
        ),
        Check(
            call="OptimizedFaceDetector .detector.backend, .cfg",
            probe=lambda d: {
                "detector.backend": d.optimized.detector.backend,
                "cfg": d.optimized.cfg,
            },
        ),
        Check(
            call="OptimizedFaceDetector .model(torch nchw)",
            probe=lambda d: model_call_summary(d.optimized.model(torch.from_numpy(nchw(small)))),
        ),
        Check(
            call="OptimizedFaceDetector.detect_faces(img)",
            probe=lambda d: detected(d.optimized.detect_faces, photo),
        ),
        Check(
            call="OptimizedFaceDetector.get_face(img)",
            probe=lambda d: face_summary(d.optimized.get_face(photo)),
        ),
    ]
    return rows
