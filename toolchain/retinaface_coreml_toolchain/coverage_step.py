"""Build step 4: predict CoreML coverage of every bucket under every gated ORT series and
format, and gate the build on it.

Each bucket's level-1 graph is loaded once and judged by each rule table. A bucket that falls
short of the recipe's limits under one series fails the build with the node, its op and the
rule; a recipe may relax the limits for one series in ``[gate.exceptions]``, and the manifest
then says that series ran under an exception.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from retinaface_coreml_toolchain.errors import GateFailed, MissingInputError
from retinaface_coreml_toolchain.files import staging_dir, write_json
from retinaface_coreml_toolchain.recipe import Limits, Recipe
from retinaface_coreml_toolchain.steplog import step

log = logging.getLogger(__name__)

FORMAT_NAMES = {"mlprogram": "MLProgram", "neuralnetwork": "NeuralNetwork"}


def coverage_dir(recipe: Recipe) -> Path:
    """e.g. ``models/build/retinaface/coverage``: ``<bucket>.json`` reports (per series and
    format); pages ``retinaface.html`` (source graph, newest series) and
    ``retinaface-<bucket>.html`` (the bucket under its worst gated series)."""
    return recipe.build_dir / "coverage"


def figures(cov: dict[str, Any]) -> dict[str, Any]:
    """The figures the manifest keeps from one Coverage record."""
    return {
        "nodes_in_graph": cov["nodes_in_graph"],
        "nodes_supported": cov["nodes_supported"],
        "partitions": cov["partitions"],
        "coverage": cov["coverage"],
        "mac_share": cov["macs"]["share"],
    }


def shortfall(cov: dict[str, Any], limits: Limits) -> str | None:
    """None when ``cov`` meets ``limits``; else what fell short, with the first node to blame."""
    short = []
    if cov["coverage"] < limits.min_coverage:
        short.append(
            f"{cov['coverage']:.1%} of nodes on CoreML ({cov['nodes_supported']}/"
            f"{cov['nodes_in_graph']}) < min_coverage {limits.min_coverage:.1%}"
        )
    if cov["partitions"] > limits.max_partitions:
        short.append(f"{cov['partitions']} partitions > max_partitions {limits.max_partitions}")
    if not short:
        return None
    if cov["rejected"]:
        first = cov["rejected"][0]
        blame = (
            f"node {first['name']!r} (op {first['op_type']}) rejected by rule "
            f"{first['code']}: {first['reason']}"
        )
        if len(cov["rejected"]) > 1:
            blame += f" (+{len(cov['rejected']) - 1} more nodes)"
    elif cov["dropped_trivial_groups"]:
        blame = f"a group of trivial nodes was dropped: {cov['dropped_trivial_groups'][0]}"
    else:
        blame = "no node was rejected"
    return "; ".join(short) + "; " + blame


def cover_bucket(path: Path, versions: tuple[str, ...], formats: tuple[str, ...]):
    """{series: CoverageReport} for the model at ``path`` (its graph loaded once)."""
    from retinaface_coreml_toolchain.coverage.api import analyse
    from retinaface_coreml_toolchain.coverage.graph import load_graph
    from retinaface_coreml_toolchain.coverage.macs import count_macs
    from retinaface_coreml_toolchain.coverage.report import CoverageReport
    from retinaface_coreml_toolchain.coverage.rules import table_for
    from retinaface_coreml_toolchain.coverage.rules.table import ASSUMED_COREML_VERSION

    graph = load_graph(path)
    macs = count_macs(graph)
    return {
        series: CoverageReport(
            model=path.name,
            graph_ort_version=graph.produced_by_ort,
            rules=series,
            requested_ort_version=series,
            require_static_shapes=False,
            coreml_version=ASSUMED_COREML_VERSION,
            notes=(),
            coverages=tuple(
                analyse(
                    graph,
                    table_for(series),
                    model_format=fmt,
                    require_static_shapes=False,
                    macs=macs,
                )
                for fmt in formats
            ),
            graph=graph,
        )
        for series in versions
    }


def _worst(reports: dict[str, Any]) -> Any:
    """The report a page shows: the series with the most partitions, then the least coverage
    (ties: the newest)."""
    return max(
        reversed(list(reports.values())),
        key=lambda r: max((len(c.partitions), -c.coverage) for c in r.coverages),
    )


def cover_buckets(recipe: Recipe) -> dict[str, dict[str, Any]]:
    """Analyse each bucket under every gated series and format; write the full reports.

    Returns bucket -> series -> format -> figures plus ``gate`` (None, or the line saying what
    fell short) and ``exception`` (the series' limits came from ``[gate.exceptions]``).
    """
    from retinaface_coreml_toolchain.coverage.html import write_report_page

    versions = recipe.gate_versions()
    results: dict[str, dict[str, Any]] = {}
    with step(f"coverage {recipe.name}"), staging_dir(coverage_dir(recipe)) as tmp:
        source = cover_bucket(recipe.source.path, versions[-1:], recipe.gate.formats)
        write_report_page(tmp / f"{recipe.name}.html", source[versions[-1]])
        for bucket in recipe.buckets:
            path = recipe.bucket_path(bucket)
            if not path.exists():
                raise MissingInputError(f"{path}: missing; run `toolchain simplify` first")
            reports = cover_bucket(path, versions, recipe.gate.formats)
            report = {
                series: {c.model_format: c.to_dict() for c in r.coverages}
                for series, r in reports.items()
            }
            write_json(tmp / f"{bucket.name}.json", report)
            write_report_page(tmp / f"{recipe.name}-{bucket.name}.html", _worst(reports))
            results[bucket.name] = {}
            for series, by_format in report.items():
                limits = recipe.gate.limits_for(series)
                excepted = series in recipe.gate.exceptions
                results[bucket.name][series] = {}
                for fmt, cov in by_format.items():
                    strict = shortfall(cov, recipe.gate.limits)
                    gate = shortfall(cov, limits)
                    if gate:
                        gate = (
                            f"model {recipe.name}, bucket {bucket.name}, ORT {series} "
                            f"{FORMAT_NAMES[fmt]}: {gate}"
                        )
                    elif strict:
                        log.warning(
                            "%s %s: ORT %s %s passes only under [gate.exceptions]: %s",
                            recipe.name, bucket.name, series, fmt, strict,
                        )  # fmt: skip
                    results[bucket.name][series][fmt] = {
                        **figures(cov),
                        "gate": gate,
                        "exception": bool(excepted and strict),
                    }
    write_json(record_path(recipe), results)
    return results


def record_path(recipe: Recipe) -> Path:
    """e.g. ``models/build/retinaface/coverage.json``: the figures and gate lines per bucket."""
    return recipe.build_dir / "coverage.json"


def check_coverage(results: dict[str, dict[str, Any]], recipe: Recipe) -> None:
    """The build gate: every bucket within the recipe's limits under every gated series."""
    short = [
        fig["gate"]
        for by_series in results.values()
        for by_format in by_series.values()
        for fig in by_format.values()
        if fig["gate"]
    ]
    if short:
        more = f" (+{len(short) - 1} more)" if len(short) > 1 else ""
        raise GateFailed(
            f"CoreML coverage gate failed: {short[0]}{more}; see {coverage_dir(recipe)}; "
            f"rewrite the op, or state the exception in {recipe.path} [gate.exceptions]"
        )


def manifest_coverage(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """bucket -> series -> format -> figures, as manifest.json keeps them."""
    return {
        bucket: {
            series: {
                fmt: {k: v for k, v in fig.items() if k != "gate"}
                for fmt, fig in sorted(by_format.items())
            }
            for series, by_format in by_series.items()
        }
        for bucket, by_series in results.items()
    }
