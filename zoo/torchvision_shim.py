"""Let PyPI's torchvision import beside the CPU-only torch, with its compiled operators off.

PyPI's torchvision wheels for x86_64 Linux are CUDA builds: their ``_C.so`` links
``libtorch_cuda.so``, which the CPU torch does not have, so torchvision's loader quietly skips
it (``torchvision.extension._has_ops()`` is then False). Its ``_meta_registrations`` module
nevertheless registers fake kernels for ``torchvision::nms`` and ``torchvision::qnms`` without
checking ``_has_ops()``, and ``torch.library.register_fake`` raises "operator torchvision::nms
does not exist". Defining the two schemas first (no kernel) lets that registration succeed.
Nothing in the zoo calls them: timm needs ``torchvision.ops.misc.FrozenBatchNorm2d`` and
openface's STAR needs ``torchvision.transforms``, both pure Python. Calling ``nms`` still fails,
loudly ("no kernel registered for CPU").
"""

from __future__ import annotations

import sys

# The two schemas of torchvision's csrc/ops/nms.cpp that _meta_registrations.py registers
# unconditionally (torchvision 0.28.0).
_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_LIBRARY = []  # keeps the Library alive: torch drops its definitions when it is collected


def install() -> None:
    """Define the schemas once, before the first ``import torchvision``."""
    if "torchvision" in sys.modules:
        raise RuntimeError("zoo.torchvision_shim.install() must run before torchvision is imported")
    if _LIBRARY:
        return
    if sys.platform != "linux":
        # PyPI's macOS torchvision is the CPU build of its torch: its _C.so loads and defines
        # these operators itself, and a second definition of the namespace would fail.
        return
    import torch

    library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        library.define(schema)
    _LIBRARY.append(library)
