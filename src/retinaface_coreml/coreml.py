"""The one macOS-specific module: is the CoreML EP here, its provider options, a CoreML session.

Written against ONNX Runtime's documented string provider options (ORT >= 1.21; facts in
``shared/specs/coreml_ep_rules.md`` §5-§6). Everything read from the process (ORT version,
providers, ``platform.mac_ver()``) comes in through ``detect_host``'s keyword arguments, so
tests hand in a macOS host on Linux without touching globals.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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


@dataclass(frozen=True, kw_only=True)
class Host:
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
    """The major of ``platform.mac_ver()[0]``, e.g. ``"14.4.1"`` -> ``"14"``; ``""`` -> None."""
    head = mac_ver.strip().split(".", 1)[0]
    return head if head.isdigit() else None


def detect_host(
    *,
    ort_version: str | None = None,
    providers: tuple[str, ...] | None = None,
    mac_ver: str | None = None,
    system: str | None = None,
) -> Host:
    """The running host; each argument left as None is read from onnxruntime or ``platform``."""
    if ort_version is None or providers is None:
        import onnxruntime

        ort_version = ort_version if ort_version is not None else onnxruntime.__version__
        if providers is None:
            providers = tuple(onnxruntime.get_available_providers())
    return Host(
        ort_version=ort_version,
        providers=tuple(providers),
        macos_major=macos_major(platform.mac_ver()[0] if mac_ver is None else mac_ver),
        system=platform.system().lower() if system is None else system,
    )


def options_digest(options: Mapping[str, str]) -> str:
    """12 hex digits naming the options an entry was built with, e.g. ``"5c0f1b7a9e21"``.

    Stable across runs and dict orders: sha256 of the sorted ``key=value`` pairs.
    """
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
