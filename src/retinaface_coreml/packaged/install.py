"""``install()``/``uninstall()``: every ``onnxruntime.InferenceSession(...)`` of the process,
also in code the app does not own, is served from the package when its model is packaged.

Patches the one attribute ``onnxruntime.InferenceSession`` (as OpenTelemetry's instrumentors
do): code that imports onnxruntime afterwards, even inside a function, gets the serving class,
a subclass of onnxruntime's own (``isinstance`` checks hold). Idempotent, thread-safe and
reversible; a class someone else put there meanwhile is left alone by ``uninstall``.
"""

from __future__ import annotations

import threading

import onnxruntime
from onnxruntime.capi.onnxruntime_inference_collection import InferenceSession as _OrtSession

from retinaface_coreml.lazy_logging import get_logger
from retinaface_coreml.packaged.session import InferenceSession

log = get_logger(__name__)

_lock = threading.Lock()
_original: type | None = None


def is_installed() -> bool:
    return onnxruntime.InferenceSession is InferenceSession


def install() -> None:
    """Serve packaged models from every ``onnxruntime.InferenceSession`` created from now on."""
    global _original
    with _lock:
        if onnxruntime.InferenceSession is InferenceSession:
            return
        _original = onnxruntime.InferenceSession
        onnxruntime.InferenceSession = InferenceSession
    log.debug("installed: onnxruntime.InferenceSession serves packaged models")


def uninstall() -> None:
    """Undo ``install`` (sessions already created keep serving as they were made)."""
    global _original
    with _lock:
        if onnxruntime.InferenceSession is not InferenceSession:
            return
        onnxruntime.InferenceSession = _original or _OrtSession
        _original = None
