"""Build step 4: predict CoreML coverage of every bucket and gate the build on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retinaface_coreml_toolchain.errors import GateFailed, MissingInputError
from retinaface_coreml_toolchain.files import staging_dir, write_json
from retinaface_coreml_toolchain.recipe import Recipe


def coverage_dir(recipe: Recipe) -> Path:
    """e.g. ``models/build/coverage``: ``<bucket>.json`` reports; pages ``retinaface.html``
    (source graph) and ``retinaface-<bucket>.html``."""
    return recipe.build_dir / "coverage"


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """The figures the manifest and the summary table keep from a full coverage report."""
    return {
        "rules": report["rules"],
        "graph_onnxruntime": report["graph_onnxruntime"],
        "formats": {
            name: {
                "nodes_in_graph": cov["nodes_in_graph"],
                "nodes_supported": cov["nodes_supported"],
                "partitions": cov["partitions"],
                "coverage": cov["coverage"],
            }
            for name, cov in sorted(report["formats"].items())
        },
    }


def cover_buckets(recipe: Recipe) -> dict[str, dict[str, Any]]:
    """Analyse each bucket model under the recipe's ORT version and format; write the reports.

    Returns bucket name -> summary plus ``gate`` (None, or the line saying what fell short).
    """
    from retinaface_coreml_toolchain.coverage.api import CoverageRequest, bucket_gate, run_coverage
    from retinaface_coreml_toolchain.coverage.html import write_report_page

    settings = recipe.coverage
    results: dict[str, dict[str, Any]] = {}
    with staging_dir(coverage_dir(recipe)) as tmp:
        source = CoverageRequest(
            model=recipe.weights.path,
            ort_version=settings.ort_version,
            formats=(settings.model_format,),
        )
        write_report_page(tmp / f"{recipe.model.name}.html", run_coverage(source))
        for bucket in recipe.buckets:
            path = recipe.bucket_path(bucket)
            if not path.exists():
                raise MissingInputError(f"{path}: missing; run `toolchain simplify` first")
            report = run_coverage(
                CoverageRequest(
                    model=path,
                    ort_version=settings.ort_version,
                    formats=(settings.model_format,),
                )
            )
            record = report.to_dict()
            write_json(tmp / f"{bucket.name}.json", record)
            write_report_page(tmp / f"{recipe.model.name}-{bucket.name}.html", report)
            results[bucket.name] = {
                **summarize(record),
                "gate": bucket_gate(
                    report,
                    min_coverage=settings.min_coverage,
                    max_partitions=settings.max_partitions,
                ),
            }
    return results


def check_coverage(results: dict[str, dict[str, Any]], recipe: Recipe) -> None:
    """The build gate: every shipped bucket fully on CoreML, in at most the allowed partitions."""
    short = [r["gate"] for r in results.values() if r["gate"]]
    if short:
        raise GateFailed(
            f"CoreML coverage gate failed: {'; '.join(short)}; see {coverage_dir(recipe)}"
        )
