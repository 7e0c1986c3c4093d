"""A model path given to the app's classes: the wheel's own source, or another RetinaFace ONNX.

The bytes decide, not the name: a file whose sha256 is the manifest's ``source_sha256`` is the
model the packaged buckets were built from and validated against, so the buckets serve it.
Anything else is opened with ONNX Runtime on the CPU at full resolution, once checked to be a
RetinaFace export (input ``input``; outputs ``loc``, ``conf`` and ``landms`` or ``landmarks``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime

from retinaface_coreml.artifacts import ModelRecord
from retinaface_coreml.errors import ArtifactError
from retinaface_coreml.lazy_logging import get_logger
from retinaface_coreml.packaged.backends import CPU_EP, Feed, Runner, SessionRunner
from retinaface_coreml.packaged.identify import file_sha256

log = get_logger(__name__)

# Names an export may give each output, in the order the runtime reads them.
OUTPUT_NAMES = (("loc",), ("conf",), ("landmarks", "landms"))


FIX = (
    "pass the path of a RetinaFace ONNX export (input 'input'; outputs 'loc', 'conf', "
    "'landms'), or leave onnx_model_path out to use the packaged models"
)


def _open_session(path: Path) -> onnxruntime.InferenceSession:
    try:
        return onnxruntime.InferenceSession(str(path), providers=[CPU_EP])
    except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/NoSuchFile types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ArtifactError(f"{path}: cannot load as an ONNX model ({first}); {FIX}") from None


def retinaface_outputs(session: onnxruntime.InferenceSession, path: Path) -> tuple[str, ...]:
    """The session's names for loc, conf and landmarks; ArtifactError when it is not RetinaFace."""
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    names = [next((n for n in choices if n in outputs), None) for choices in OUTPUT_NAMES]
    if inputs != ["input"] or None in names:
        raise ArtifactError(
            f"{path}: not a RetinaFace model (inputs {inputs}, outputs {outputs}); {FIX}"
        )
    return tuple(name for name in names if name is not None)


class _LazyRunner:
    """Opens the file on the CPU at its first run (only frames no bucket holds need it)."""

    backend = "cpu"

    def __init__(self, path: Path) -> None:
        self._path = path
        self._runner: Runner | None = None
        self._lock = threading.Lock()

    def run(self, feed: Feed, run_options: object = None) -> list[np.ndarray]:
        with self._lock:
            if self._runner is None:
                session = _open_session(self._path)
                names = retinaface_outputs(session, self._path)
                self._runner = SessionRunner(session, backend="cpu", output_names=names)
        return self._runner.run(feed, run_options)


@dataclass(frozen=True, kw_only=True)
class SourceModel:
    """A checked model path. ``is_packaged``: the buckets were built from these bytes.

    ``session`` is the ONNX Runtime session of another model (None for the packaged source);
    ``runner`` runs the file itself at any input size, on the CPU.
    """

    path: Path
    sha256: str
    is_packaged: bool
    session: onnxruntime.InferenceSession | None
    runner: Runner


def open_source(path: Path, packaged: ModelRecord) -> SourceModel:
    """Recognise ``path`` as the packaged source or open it as another RetinaFace ONNX."""
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file; {FIX}")
    digest = file_sha256(path)
    if digest is None:
        raise ArtifactError(f"{path}: cannot read; {FIX}")
    if digest == packaged.source_sha256:
        log.info("%s: the model this wheel was built from; serving it from the buckets", path)
        return SourceModel(
            path=path, sha256=digest, is_packaged=True, session=None, runner=_LazyRunner(path)
        )
    session = _open_session(path)
    names = retinaface_outputs(session, path)
    log.warning_once(
        str(path),
        "%s: not the model this wheel was built from (sha256 %s…); running it on the CPU "
        "at full resolution with dynamic shapes, without CoreML. To serve it from "
        "fixed-shape buckets (CoreML on macOS), build them from it: "
        "`make models SOURCE=%s`, then install the wheel from dist/",
        path,
        digest[:12],
        path,
    )
    runner = SessionRunner(session, backend="cpu", output_names=names)
    return SourceModel(path=path, sha256=digest, is_packaged=False, session=session, runner=runner)
