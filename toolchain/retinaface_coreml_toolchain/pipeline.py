"""`toolchain build`: every step in order, each gate applied where its figures are made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retinaface_coreml_toolchain.recipe import Recipe


@dataclass(frozen=True, kw_only=True)
class PipelineResult:
    fetch: dict[str, Any]
    simplify: dict[str, Any]
    validation: dict[str, Any]
    coverage: dict[str, dict[str, Any]]
    precompile: dict[str, Any]
    package: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "fetch": self.fetch,
            "simplify": self.simplify,
            "validation": self.validation,
            "coverage": self.coverage,
            "precompile": self.precompile,
            "package": self.package,
        }


def run_pipeline(recipe: Recipe, *, from_path: Path | None = None) -> PipelineResult:
    """fetch -> simplify -> validate (gate) -> coverage (gate) -> precompile -> package.

    ``from_path`` builds from that ONNX (``make models SOURCE=...``); without it, weights an
    earlier ``fetch --from`` took are kept, else the pinned ones are fetched.
    """
    from retinaface_coreml_toolchain.coverage_step import check_coverage, cover_buckets
    from retinaface_coreml_toolchain.fetch import FetchRequest, fetch_weights
    from retinaface_coreml_toolchain.package import build_wheel
    from retinaface_coreml_toolchain.precompile import precompile_buckets
    from retinaface_coreml_toolchain.simplify import simplify_buckets
    from retinaface_coreml_toolchain.validate import check_validation, validate_buckets

    fetched = fetch_weights(recipe, FetchRequest(from_path=from_path, keep_own=True))
    simplified = simplify_buckets(recipe)
    validation = validate_buckets(recipe)
    check_validation(validation, recipe)
    coverage = cover_buckets(recipe)
    check_coverage(coverage, recipe)
    precompiled = precompile_buckets(recipe)
    packaged = build_wheel(recipe)
    return PipelineResult(
        fetch=fetched.to_dict(),
        simplify=simplified.to_dict(),
        validation=validation.to_dict(),
        coverage=coverage,
        precompile=precompiled,
        package=packaged.to_dict(),
    )


def render(record: dict[str, Any]) -> str:
    """The summary table: one row per bucket, then the precompile state and the wheel."""
    validation = {b["bucket"]: b for b in record["validation"]["buckets"]}
    header = (
        f"{'bucket':<9} {'nodes':>5} {'->':^4} {'after':>5} {'max |diff|':>10} "
        f"{'faces':>5} {'CoreML nodes':>12} {'partitions':>10}"
    )
    lines = [header, "-" * len(header)]
    label = ""
    for b in record["simplify"]["buckets"]:
        v = validation[b["bucket"]]
        cov = record["coverage"][b["bucket"]]
        ((fmt, c),) = cov["formats"].items()
        label = f"CoreML EP coverage predicted for {fmt} under ORT {cov['rules']} rules"
        lines.append(
            f"{b['bucket']:<9} {b['nodes_before']:>5} {'->':^4} {b['nodes_after']:>5} "
            f"{v['worst_abs_diff']:>10.2e} {v['faces_bucket']:>5} "
            f"{c['nodes_supported']:>6}/{c['nodes_in_graph']:<5} {c['partitions']:>10}"
        )
    pre, pkg = record["precompile"], record["package"]
    lines += [
        "",
        f"({label}; max |diff| and faces: bucket vs source model, ORT CPU, "
        f"{len(record['validation']['images'])} photos)",
        f"precompile: {pre.get('summary') or pre.get('status', '-')}",
        f"wheel:  {pkg['wheel']}",
        f"sha256: {pkg['sha256']}",
    ]
    return "\n".join(lines)
