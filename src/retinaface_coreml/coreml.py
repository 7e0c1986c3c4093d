"""The one macOS-specific module: is the CoreML EP here, its provider options, a CoreML session.

Written against ONNX Runtime's documented string provider options (ORT >= 1.21; facts in
``shared/specs/coreml_ep_rules.md`` §5-§6). All contact with the CoreML EP goes through two
functions, ``detect_host`` and ``create_session``: the tests replace exactly these (in this process
and, through ``sitecustomize``, in the compile child) to drive every other line on Linux.
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import onnxruntime

EP = "CoreMLExecutionProvider"
CPU_EP = "CPUExecutionProvider"
CACHE_DIR_OPTION = "ModelCacheDirectory"

# The recipe's defaults (models/retinaface.toml [coreml]); used when a manifest records none.
DEFAULT_OPTIONS: Mapping[str, str] = {"ModelFormat": "MLProgram", "MLComputeUnits": "ALL"}

# Left out of the options digest: where the cache lives is not part of what is in it. Every other
# option stays in, even the ones documented as runtime-only (MLComputeUnits...): ORT never
# invalidates an entry (spec §5.4), so a needless recompile is the safe side of a wrong guess.
_NOT_IN_DIGEST = frozenset({CACHE_DIR_OPTION})


# A NamedTuple: cheap to define on the startup path (see the package docstring).
class Host(NamedTuple):
    """What this process runs on, e.g. ORT ``"1.32.0"`` on macOS major ``"14"`` (None off macOS)."""

    ort_version: str
    providers: tuple[str, ...]
    macos_major: str | None
    system: str

    @property
    def coreml_available(self) -> bool:
        """The EP is in this ORT build and this is macOS (a Linux ``--use_coreml`` EP is a stub)."""
        return EP in self.providers and self.macos_major is not None

    @property
    def unavailable_reason(self) -> str:
        """One sentence for ``info``/``warmup`` when CoreML cannot be used here."""
        if self.coreml_available:
            return ""
        if EP not in self.providers:
            where = "the macOS wheels" if self.macos_major is None else "this build"
            return (
                f"CoreML is unavailable here: onnxruntime {self.ort_version} on {self.system} has "
                f"no {EP} (only {where} ship it); the CPU backend is in use"
            )
        return f"CoreML is unavailable here: {EP} needs macOS; the CPU backend is in use"


def macos_major(mac_ver: str) -> str | None:
    """The major of a macOS version, e.g. ``"14.4.1"`` -> ``"14"``; ``""`` -> None.

    A Python built with an SDK older than macOS 26 is told ``"16.x"`` on macOS 26 (Apple's
    ``SYSTEM_VERSION_COMPAT`` shim, cpython gh-135675): no macOS 16 to 25 exists, so those
    majors are read as the 26-and-later release they stand for.
    """
    head = mac_ver.strip().split(".", 1)[0]
    if not head.isdigit():
        return None
    major = int(head)
    return str(major + 10) if 16 <= major <= 25 else str(major)


def _product_version() -> str:
    """macOS's own version string, e.g. ``"26.1"``; ``""`` off macOS or when it cannot be read.

    ``sysctl kern.osproductversion`` answers with the real version whatever SDK the Python was
    built with; ``platform.mac_ver()`` reads a plist the compat shim rewrites.
    """
    if sys.platform != "darwin":
        return ""
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        size = ctypes.c_size_t(64)
        buffer = ctypes.create_string_buffer(size.value)
        if libc.sysctlbyname(b"kern.osproductversion", buffer, ctypes.byref(size), None, 0):
            return platform.mac_ver()[0]
        return buffer.value.decode("ascii", "replace")
    except (OSError, AttributeError):
        return platform.mac_ver()[0]


def detect_host(
    *,
    ort_version: str | None = None,
    providers: tuple[str, ...] | None = None,
    mac_ver: str | None = None,
    system: str | None = None,
) -> Host:
    """The running host; each argument left as None is read from onnxruntime or the OS.

    One of the two seams to the CoreML EP (``create_session`` is the other): tests replace
    both, in this process and in the compile child (tests/runtime/standin_site).
    """
    if ort_version is None or providers is None:
        import onnxruntime

        ort_version = ort_version if ort_version is not None else onnxruntime.__version__
        if providers is None:
            providers = tuple(onnxruntime.get_available_providers())
    return Host(
        ort_version=ort_version,
        providers=tuple(providers),
        macos_major=macos_major(_product_version() if mac_ver is None else mac_ver),
        system=platform.system().lower() if system is None else system,
    )


def options_digest(options: Mapping[str, str]) -> str:
    """12 hex digits naming the options an entry was built with, e.g. ``"5c0f1b7a9e21"``.

    Stable across runs and dict orders: sha256 of the sorted ``key=value`` pairs.
    """
    import hashlib  # here, not at import: the CPU path never digests options

    pairs = sorted((str(k), str(v)) for k, v in options.items() if k not in _NOT_IN_DIGEST)
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:12]


def provider_options(options: Mapping[str, str], cache_dir: Path | None) -> dict[str, str]:
    """The CoreML EP's string options with ``ModelCacheDirectory`` set (None: caching off)."""
    merged = {str(k): str(v) for k, v in options.items() if k != CACHE_DIR_OPTION}
    if cache_dir is not None:
        merged[CACHE_DIR_OPTION] = str(cache_dir)
    return merged


def create_session(
    model: bytes,
    *,
    options: Mapping[str, str],
    cache_dir: Path | None,
    session_options: onnxruntime.SessionOptions | None = None,
) -> onnxruntime.InferenceSession:
    """An ORT session on CoreML (CPU for what CoreML does not take), cached in ``cache_dir``.

    ORT writes or reuses ``<cache_dir>/<COREML_CACHE_KEY>/``; the key comes from the model's
    metadata, so a model given as bytes caches as well as one given as a path (spec §5.2).
    """
    import onnxruntime

    return onnxruntime.InferenceSession(
        model,
        sess_options=session_options,
        providers=[(EP, provider_options(options, cache_dir)), CPU_EP],
    )
