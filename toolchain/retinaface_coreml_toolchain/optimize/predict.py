"""The predictor on an in-memory model: one level-1 graph, judged under several rule tables."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import onnx

from retinaface_coreml_toolchain.coverage.api import FORMATS, analyse
from retinaface_coreml_toolchain.coverage.graph import Graph, load_graph
from retinaface_coreml_toolchain.coverage.report import Coverage
from retinaface_coreml_toolchain.coverage.rules import table_for


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """Coverage per (ORT version, format) of one model, and the graph it was judged on."""

    graph: Graph
    coverages: dict[tuple[str, str], Coverage]

    def score(self, version: str, model_format: str) -> tuple[int, int]:
        """(partitions, nodes left on CPU): lower is better, partitions first."""
        cov = self.coverages[(version, model_format)]
        return len(cov.partitions), cov.nodes_in_graph - cov.nodes_supported


def predict(
    model: onnx.ModelProto, versions: tuple[str, ...], formats: tuple[str, ...] = FORMATS
) -> Prediction:
    """Write ``model`` to a temp file, load its level-1 graph once, judge it per table."""
    with tempfile.TemporaryDirectory(prefix="optimize-") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, str(path))
        graph = load_graph(path)
    coverages = {
        (version, fmt): analyse(
            graph, table_for(version), model_format=fmt, require_static_shapes=False
        )
        for version in versions
        for fmt in formats
    }
    return Prediction(graph=graph, coverages=coverages)


def cpu_feeding_coreml(graph: Graph, coverage: Coverage) -> list[str]:
    """CPU nodes with a CoreML node downstream: each one is a round trip CPU -> CoreML."""
    on_coreml = {name for part in coverage.partitions for name in part}
    index = {node.name: node.index for node in graph.nodes}
    coreml_idx = {index[name] for name in on_coreml}
    feeds: list[str] = []
    # Walk backwards once: a node "reaches CoreML" if any consumer is CoreML or reaches it.
    reaches = [False] * len(graph.nodes)
    for node in reversed(_topological(graph)):
        reaches[node] = any(e.dst in coreml_idx or reaches[e.dst] for e in graph.output_edges(node))
    for node in graph.nodes:
        if node.name not in on_coreml and reaches[node.index]:
            feeds.append(node.name)
    return feeds


def _topological(graph: Graph) -> list[int]:
    from retinaface_coreml_toolchain.coverage.partition import nodes_in_topological_order

    return nodes_in_topological_order(graph)
