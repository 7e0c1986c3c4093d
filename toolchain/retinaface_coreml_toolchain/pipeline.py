"""`toolchain build`: every step in order per recipe, each gate applied where its figures are
made, then one wheel for all of them (nothing is packaged when any gate fails)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retinaface_coreml_toolchain.recipe import Recipe


@dataclass(frozen=True, kw_only=True)
class ModelBuild:
    name: str
    fetch: dict[str, Any]
    simplify: dict[str, Any]
    validation: dict[str, Any]
    coverage: dict[str, dict[str, Any]]
    precompile: dict[str, Any]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fetch": self.fetch,
            "simplify": self.simplify,
            "validation": self.validation,
            "coverage": self.coverage,
            "precompile": self.precompile,
            "seconds": self.seconds,
        }


@dataclass(frozen=True, kw_only=True)
class PipelineResult:
    models: tuple[ModelBuild, ...]
    package: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"models": [m.to_dict() for m in self.models], "package": self.package}


def build_model(recipe: Recipe, *, from_path: Path | None = None) -> ModelBuild:
    """fetch -> simplify (+ optimize) -> validate (gate) -> coverage (gate) -> precompile.

    ``from_path`` builds RetinaFace from that ONNX (``make models SOURCE=...``); without it,
    weights an earlier ``fetch --from`` took are kept, else the pinned ones are fetched.
    """
    from retinaface_coreml_toolchain.coverage_step import check_coverage, cover_buckets
    from retinaface_coreml_toolchain.fetch import FetchRequest, fetch_weights
    from retinaface_coreml_toolchain.precompile import precompile_buckets
    from retinaface_coreml_toolchain.simplify import simplify_buckets
    from retinaface_coreml_toolchain.validate import check_validation, validate_buckets

    started = time.perf_counter()
    fetched = fetch_weights(recipe, FetchRequest(from_path=from_path, keep_own=True))
    simplified = simplify_buckets(recipe)
    validation = validate_buckets(recipe)
    check_validation(validation, recipe)
    coverage = cover_buckets(recipe)
    check_coverage(coverage, recipe)
    precompiled = precompile_buckets(recipe)
    return ModelBuild(
        name=recipe.name,
        fetch=fetched.to_dict(),
        simplify=simplified.to_dict(),
        validation=validation.to_dict(),
        coverage=coverage,
        precompile=precompiled,
        seconds=round(time.perf_counter() - started, 1),
    )


def run_pipeline(recipes: list[Recipe], *, from_path: Path | None = None) -> PipelineResult:
    """Build every recipe, then package them into one wheel (only when every gate passed)."""
    from retinaface_coreml_toolchain.errors import RecipeError
    from retinaface_coreml_toolchain.package import build_wheel

    if from_path is not None and not any(r.detector is not None for r in recipes):
        raise RecipeError(f"{from_path}: --from/SOURCE= replaces RetinaFace's source; add "
                          "retinaface to --models/MODELS=")  # fmt: skip
    builds = tuple(
        build_model(r, from_path=from_path if r.detector is not None else None) for r in recipes
    )
    packaged = build_wheel(list(recipes))
    return PipelineResult(models=builds, package=packaged.to_dict())


def render(record: dict[str, Any]) -> str:
    """One row per model and bucket, then the precompile state and the wheel."""
    header = (
        f"{'model':<11} {'bucket':<12} {'nodes':>5} {'->':^4} {'after':>5} {'max |diff|':>10} "
        f"{'worst ORT series':<17} {'CoreML nodes':>12} {'partitions':>10}"
    )
    lines = [header, "-" * len(header)]
    for m in record["models"]:
        validation = {b["bucket"]: b for b in m["validation"]["buckets"]}
        for b in m["simplify"]["buckets"]:
            v = validation[b["bucket"]]
            series, fmt, c = _worst(m["coverage"][b["bucket"]])
            lines.append(
                f"{m['name']:<11} {b['bucket']:<12} {b['nodes_before']:>5} {'->':^4} "
                f"{b['nodes_after']:>5} {v['worst_abs_diff']:>10.2e} {series + ' ' + fmt:<17} "
                f"{c['nodes_supported']:>6}/{c['nodes_in_graph']:<5} {c['partitions']:>10}"
            )
    pkg = record["package"]
    lines += [""]
    for m in record["models"]:
        series = ", ".join(next(iter(m["coverage"].values())))
        pre = m["precompile"]
        lines.append(
            f"{m['name']}: gated under ORT {series}; built in {m['seconds']:.1f} s; "
            f"precompile: {pre.get('summary') or pre.get('status', '-')}"
        )
    lines += [f"wheel:  {pkg['wheel']} ({pkg['size']:,} bytes)", f"sha256: {pkg['sha256']}"]
    return "\n".join(lines)


def _worst(by_series: dict[str, dict[str, Any]]) -> tuple[str, str, dict[str, Any]]:
    """The (series, format, figures) with the most partitions, then the fewest nodes on CoreML."""
    cells = [(s, f, c) for s, by_fmt in by_series.items() for f, c in by_fmt.items()]
    return max(cells, key=lambda x: (x[2]["partitions"], -x[2]["coverage"]))
