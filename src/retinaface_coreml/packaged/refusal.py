"""Buckets the build's CoreML numerical gate refused: whether a refusal holds here, and the words.

``toolchain precompile`` runs each compiled CoreML entry on the recipe's validation inputs
against ORT's CPU EP and ships none that is out of the recipe's ``[coreml_tolerance]``; the
manifest lists those under ``precompile.refused`` (per release after ``merge-caches``), parsed
into ``BucketInfo.refusals`` by artifacts.py. A bucket refused for the options a session uses is
served on the CPU EP: compiling it on the user's Mac would serve outputs the build measured as
wrong. backends.py asks ``applicable`` before it looks at any cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from retinaface_coreml.artifacts import BucketInfo, Refusal
from retinaface_coreml.lazy_logging import get_logger

log = get_logger(__name__)


def applicable(
    bucket: BucketInfo, *, digest: str, ort_version: str, macos_major: str, shipped_here: bool
) -> Refusal | None:
    """The refusal that keeps ``bucket`` off CoreML for options ``digest`` on this host, if any.

    Only a refusal under the same options counts: other options (the caller's, key by key over
    the recipe's) were never measured, so they compile and swap as any unshipped bucket does.
    A refusal measured on this host's own (ORT, macOS major) always holds. One measured on
    another release holds too, unless the wheel ships an entry for this host that passed the
    gate (``shipped_here``: same ORT and options, built on this macOS major or an older one).
    Why across releases: the gate fails on precision (Core ML computing in float16 on the GPU or
    Neural Engine that ``MLComputeUnits``, part of the digest, allows), a property of the model
    and the compute units that another ORT or macOS release does not remove; nothing measured
    this host's release, and the one measurement says wrong. A passing entry shipped for this
    ORT is a measurement of it, and wins.
    """
    same = [r for r in bucket.refusals if r.options_digest == digest]
    here = [r for r in same if (r.ort_version, r.macos_major) == (ort_version, macos_major)]
    if here:
        return here[0]
    if shipped_here or not same:
        return None
    return same[-1]


def release(refusal: Refusal) -> str:
    """e.g. ``"onnxruntime 1.32.0 on macOS 14, options 1e63e1b50d8d"``."""
    return (
        f"onnxruntime {refusal.ort_version} on macOS {refusal.macos_major}, "
        f"options {refusal.options_digest}"
    )


def figures_text(figures: Mapping[str, Any], prefix: str = "") -> str:
    """Flat ``key value`` pairs, e.g. ``"min_iou 0.8312, relative_diff.loc 0.031"``."""
    parts = []
    for key, value in figures.items():
        if isinstance(value, Mapping):
            parts.append(figures_text(value, f"{prefix}{key}."))
        else:
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            parts.append(f"{prefix}{key} {shown}")
    return ", ".join(p for p in parts if p)


def explain(refusal: Refusal) -> str:
    """e.g. ``"refused by the build's CoreML numerical gate on onnxruntime 1.32.0 on macOS 14,
    options 1e63e1b50d8d: y 2.1e-01 > 0.05 (max_rel_diff 0.21, relative_diff.y 0.21)"``."""
    figures = figures_text(refusal.figures)
    return (
        f"refused by the build's CoreML numerical gate on {release(refusal)}: {refusal.reason}"
        + (f" ({figures})" if figures else "")
    )


def advice(model: str) -> str:
    """What a user can do about a refusal of one of ``model``'s buckets."""
    return (
        f"to serve it on CoreML, widen [coreml_tolerance] in models/{model}.toml and rebuild "
        "(`make models`), or pass other CoreML provider options (e.g. MLComputeUnits)"
    )


def warn(model: str, bucket: str, refusal: Refusal) -> None:
    """One warning per (model, bucket) in this process: served on CPU, why, and what to do."""
    log.warning_once(
        (model, bucket),
        "%s %s: serving on the CPU, not CoreML: %s; %s",
        model,
        bucket,
        explain(refusal),
        advice(model),
    )
