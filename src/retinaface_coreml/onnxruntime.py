"""onnxruntime's public names, with an ``InferenceSession`` that serves packaged models.

Adopt with one line::

    import retinaface_coreml.onnxruntime as ort

Every other name (``SessionOptions``, ``get_available_providers``, ``__version__``...) is
onnxruntime's own object.
"""

from __future__ import annotations

import onnxruntime as _ort
from onnxruntime import *  # noqa: F403  (the public names, as `import onnxruntime` has them)
from onnxruntime import __version__  # noqa: F401

from retinaface_coreml.packaged.session import InferenceSession  # noqa: F401


def __getattr__(name: str) -> object:
    """Anything else onnxruntime has (``capi``, private helpers), from onnxruntime itself."""
    return getattr(_ort, name)
