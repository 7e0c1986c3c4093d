"""The coverage step: request in, CoverageReport out; and the build's gate on it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from retinaface_coreml_toolchain.coverage.graph import Graph, load_graph
from retinaface_coreml_toolchain.coverage.macs import MacCount, count_macs
from retinaface_coreml_toolchain.coverage.partition import create_supported_partition_node_groups
from retinaface_coreml_toolchain.coverage.report import FORMAT_NAMES, Coverage, CoverageReport
from retinaface_coreml_toolchain.coverage.rules import default_version, table_for
from retinaface_coreml_toolchain.coverage.rules.table import ASSUMED_COREML_VERSION, Ctx, RuleTable
from retinaface_coreml_toolchain.coverage.support import judge
from retinaface_coreml_toolchain.errors import ToolchainError
from retinaface_coreml_toolchain.steplog import step

log = logging.getLogger(__name__)

FORMATS = ("mlprogram", "neuralnetwork")


@dataclass(frozen=True, kw_only=True)
class CoverageRequest:
    """What to analyse: the model, the ORT release to model (None: installed), the formats."""

    model: Path
    ort_version: str | None = None
    formats: tuple[str, ...] = FORMATS
    require_static_shapes: bool = False


def analyse(
    graph: Graph,
    table: RuleTable,
    *,
    model_format: str,
    require_static_shapes: bool,
    macs: MacCount | None = None,
) -> Coverage:
    """Judge every node, then partition as GetCapability does. Pure: no I/O.

    ``macs``: the graph's MAC count, when the caller already has it (it is the same for every
    format); counted here otherwise.
    """
    if model_format not in FORMATS:
        raise ToolchainError(f"unknown model format '{model_format}'; use one of {FORMATS}")
    if macs is None:
        macs = count_macs(graph)
    ctx = Ctx(
        graph=graph,
        mlprogram=model_format == "mlprogram",
        require_static=require_static_shapes,
        coreml_version=ASSUMED_COREML_VERSION,
    )
    verdicts = tuple(judge(node, table, ctx) for node in graph.nodes)
    supported = {v.index for v in verdicts if v.supported}

    def keep_group(group: list[int]) -> bool:
        # 1.32's on-group-closed filter: keep unless every node's builder is trivial.
        return any(graph.nodes[i].op_type not in table.trivial for i in group)

    groups, dropped = create_supported_partition_node_groups(
        graph, supported.__contains__, keep_group if table.drop_trivial_groups else None
    )
    names = [node.name for node in graph.nodes]
    return Coverage(
        model_format=model_format,
        rules=table.version,
        nodes_in_graph=len(graph.nodes),
        partitions=tuple(tuple(names[i] for i in group) for group in groups),
        dropped_trivial_groups=tuple(tuple(names[i] for i in group) for group in dropped),
        verdicts=verdicts,
        macs=macs,
        macs_on_coreml=macs.of(i for group in groups for i in group),
    )


def run_coverage(request: CoverageRequest) -> CoverageReport:
    """Load the level-1 graph of ``request.model`` and predict the CoreML EP's partitioning."""
    import onnxruntime

    with step(f"coverage {request.model.name}"):
        installed = onnxruntime.__version__
        table = table_for(request.ort_version or default_version(installed))
        graph = load_graph(request.model)
        macs = count_macs(graph)
        notes = []
        if table_for(default_version(graph.produced_by_ort)).version != table.version:
            notes.append(
                f"the level-1 graph comes from onnxruntime {graph.produced_by_ort}, the rules "
                f"from ORT {table.version}; level-1 rewrites can differ between releases, so "
                f"install onnxruntime {table.version} for an exact node count"
            )
        if request.ort_version is None and table.version != default_version(installed):
            notes.append(f"onnxruntime {installed} is not modelled; using ORT {table.version}")
        coverages = tuple(
            analyse(
                graph,
                table,
                model_format=fmt,
                require_static_shapes=request.require_static_shapes,
                macs=macs,
            )
            for fmt in request.formats
        )
    return CoverageReport(
        model=request.model.name,
        graph_ort_version=graph.produced_by_ort,
        rules=table.version,
        requested_ort_version=request.ort_version,
        require_static_shapes=request.require_static_shapes,
        coreml_version=ASSUMED_COREML_VERSION,
        notes=tuple(notes),
        coverages=coverages,
        graph=graph,
    )


def bucket_gate(report: CoverageReport, *, min_coverage: float, max_partitions: int) -> str | None:
    """None when every format meets both thresholds, else one line saying what fell short."""
    for cov in report.coverages:
        short = []
        if cov.coverage < min_coverage:
            short.append(
                f"{cov.coverage:.1%} of nodes on CoreML ({cov.nodes_supported}/"
                f"{cov.nodes_in_graph}), below {min_coverage:.1%}"
            )
        if len(cov.partitions) > max_partitions:
            short.append(f"{len(cov.partitions)} partitions, above {max_partitions}")
        if short:
            return (
                f"{report.model} [{FORMAT_NAMES[cov.model_format]}, ORT {report.rules}]: "
                + "; ".join(short)
            )
    return None
