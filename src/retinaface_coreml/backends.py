"""Execution backends: open one bucket model as a runner on the CPU or CoreML EP.

This is the CPU-only version: it knows whether ORT offers the CoreML EP, refuses ``"coreml"``
where it does not, and on macOS opens a plain CoreML session (no cache yet). The CoreML cache
and the background compile (DESIGN.md, "The CoreML cache", "Never block on a compile") plug in
behind the same three functions: ``open_runner``, ``warmup`` and ``describe``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import onnxruntime

from retinaface_coreml.errors import BackendError

if TYPE_CHECKING:
    from retinaface_coreml.artifacts import BucketInfo, Manifest

log = logging.getLogger(__name__)

BACKENDS = ("auto", "cpu", "coreml")
CPU_EP = "CPUExecutionProvider"
COREML_EP = "CoreMLExecutionProvider"

Progress = Callable[[str], None]
"""Receives one human-readable line per event, e.g. ``"640x640: cpu, nothing to compile"``."""


class Runner(Protocol):
    """One bucket model ready to run; ``backend`` is ``"cpu"`` or ``"coreml"``."""

    backend: str

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Run a [1, 3, H, W] float32 tensor; outputs in the manifest's ``model.outputs`` order."""
        ...


class SessionRunner:
    """A Runner around one ``onnxruntime.InferenceSession``."""

    def __init__(
        self,
        session: onnxruntime.InferenceSession,
        *,
        backend: str,
        input_name: str,
        output_names: tuple[str, ...],
    ) -> None:
        self.backend = backend
        self._session = session
        self._input_name = input_name
        self._output_names = list(output_names)

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        return self._session.run(self._output_names, {self._input_name: tensor})


def coreml_available() -> bool:
    """Whether this onnxruntime build offers the CoreML execution provider (macOS wheels only)."""
    return COREML_EP in onnxruntime.get_available_providers()


def check_backend(backend: str) -> str:
    """Return ``backend`` if it is a known name and usable here, else raise BackendError."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; use one of: {', '.join(BACKENDS)}")
    if backend == "coreml" and not coreml_available():
        raise BackendError(
            f"backend 'coreml' requested but onnxruntime {onnxruntime.__version__} has no "
            f"{COREML_EP} here (it ships only in the macOS wheels); use backend='auto' or 'cpu'"
        )
    return backend


def open_runner(manifest: Manifest, bucket: BucketInfo, *, backend: str = "auto") -> Runner:
    """Open ``bucket``'s model from verified bytes (one read: no swap between check and load)."""
    check_backend(backend)
    model_bytes = manifest.read_verified(bucket.file)
    use_coreml = backend == "coreml"
    if use_coreml:
        # No cache yet: an explicit "coreml" compiles in the foreground (30-60 s on first load).
        log.info("compiling %s for CoreML in the foreground (no cache)", bucket.file)
        providers: list[Any] = [COREML_EP, CPU_EP]
    else:
        providers = [CPU_EP]
    session = onnxruntime.InferenceSession(model_bytes, providers=providers)
    log.debug("opened %s on %s", bucket.file, session.get_providers())
    return SessionRunner(
        session,
        backend="coreml" if use_coreml else "cpu",
        input_name=manifest.model.input,
        output_names=manifest.model.outputs,
    )


def warmup(
    manifest: Manifest, buckets: Iterable[BucketInfo], *, progress: Progress | None = None
) -> None:
    """Prepare ``buckets`` for fast first use; here: verify each file, nothing to compile."""
    report = progress or (lambda line: log.info("%s", line))
    reason = "" if coreml_available() else " (CoreML unavailable here)"
    for bucket in buckets:
        manifest.read_verified(bucket.file)
        report(f"{bucket.name}: verified {bucket.file}; cpu backend, nothing to compile{reason}")


def describe(manifest: Manifest) -> dict[str, Any]:
    """Backend availability and per-bucket cache state, as a JSON-ready record.

    e.g. ``{"onnxruntime": "1.32.0", "backend": "cpu", "coreml": {"available": False, ...},
    "buckets": [{"name": "640x640", "coreml_cache": "unavailable"}, ...]}``
    """
    available = coreml_available()
    if available:
        reason = "CoreMLExecutionProvider is available; no CoreML cache is set up yet"
        cache = "none"
    else:
        reason = (
            f"onnxruntime {onnxruntime.__version__} has no CoreMLExecutionProvider on this "
            "platform; the CPU backend is in use"
        )
        cache = "unavailable"
    return {
        "onnxruntime": onnxruntime.__version__,
        "providers": list(onnxruntime.get_available_providers()),
        "backend": "cpu",
        "coreml": {"available": available, "reason": reason},
        "buckets": [
            {"name": b.name, "coreml_cache_key": b.coreml_cache_key, "coreml_cache": cache}
            for b in manifest.buckets
        ],
    }
