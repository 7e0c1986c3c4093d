"""The picture of a coverage report: one self-contained HTML page (inline CSS, JS and data).

The page embeds the same record ``--json`` prints, plus one drawing per view: the level-1
graph's nodes (op, name, input shapes, partition, rejecting rule) and their layered layout
(``coverage/layout.py``). ``page.js`` draws it as SVG in the browser. Analysis stays in
``api.py``/``report.py``; this module only renders and writes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from retinaface_coreml_toolchain.coverage.graph import Graph
from retinaface_coreml_toolchain.coverage.layout import Placed, layered
from retinaface_coreml_toolchain.coverage.report import (
    DROPPED_TRIVIAL_REASON,
    FORMAT_NAMES,
    Coverage,
    CoverageReport,
)
from retinaface_coreml_toolchain.coverage.rules.table import dtype_name, fmt_shape
from retinaface_coreml_toolchain.errors import ToolchainError
from retinaface_coreml_toolchain.files import write_bytes

CPU = -1  # the "partition" of a node the EP leaves on the CPU
MIN_CHAIN = 3  # a chain of supported nodes shorter than this is drawn node by node
COLLAPSE_ABOVE = 100  # graphs with more nodes open with their chains collapsed


class HtmlTargetError(ToolchainError):
    """The --html path cannot be written."""


def check_target(path: Path) -> None:
    """Raise HtmlTargetError unless ``path``'s folder exists and takes a new file."""
    folder = path.parent
    if path.is_dir():
        raise HtmlTargetError(f"{path}: is a folder; give a file name, e.g. {path / 'report.html'}")
    if not folder.is_dir():
        raise HtmlTargetError(f"{path}: folder {folder} does not exist; create it or pick another")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise HtmlTargetError(f"{path}: folder {folder} is not writable; pick another folder")


def write_report_page(path: Path, report: CoverageReport) -> None:
    """Write the coverage page of ``report`` to ``path`` atomically (e.g. ``retinaface.html``)."""
    write_bytes(path, coverage_page(report).encode())


def write_optimize_page(path: Path, record: dict[str, Any], *, before: Any, after: Any) -> None:
    """Write the optimize page (``before``/``after``: optimize.predict.Prediction) atomically."""
    write_bytes(path, optimize_page(record, before=before, after=after).encode())


def coverage_page(report: CoverageReport) -> str:
    """The page for one model: one view per analysed format, side by side."""
    if report.graph is None:
        raise ValueError("a CoverageReport without its graph cannot be drawn")
    full = _full_layout(report.graph)
    views = [
        _view(
            report.graph,
            cov,
            title=FORMAT_NAMES[cov.model_format],
            full=full,
        )
        for cov in report.coverages
    ]
    header = {
        "title": f"CoreML EP coverage: {report.model}",
        "model": report.model,
        "facts": [
            ["ORT rules", report.rules],
            ["level-1 graph from onnxruntime", report.graph_ort_version],
            ["formats", ", ".join(FORMAT_NAMES[c.model_format] for c in report.coverages)],
        ],
        "notes": list(report.notes),
    }
    return _page(header=header, record=report.to_dict(), views=views)


def optimize_page(record: dict[str, Any], *, before: Any, after: Any) -> str:
    """Before (IN) and after (OUT) side by side, under the first ORT version, deciding format."""
    version, fmt = record["ort_versions"][0], record["model_format"]
    old = {(n.name, n.op_type) for n in before.graph.nodes}
    new = {(n.name, n.op_type) for n in after.graph.nodes}
    views = [
        _view(
            prediction.graph,
            prediction.coverages[(version, fmt)],
            title=f"{title}: {name}",
            full=_full_layout(prediction.graph),
            marked={n.index for n in prediction.graph.nodes if (n.name, n.op_type) not in other},
            mark_label=mark_label,
        )
        for title, name, prediction, other, mark_label in (
            ("before", record["model"], before, new, "removed or replaced by optimize"),
            ("after", record["output"], after, old, "new or rewritten by optimize"),
        )
    ]
    header = {
        "title": f"toolchain optimize: {record['model']} -> {record['output']}",
        "model": record["model"],
        "facts": [
            ["ORT rules", version],
            ["format", FORMAT_NAMES[fmt]],
            [
                "passes kept",
                ", ".join(p["name"] for p in record["passes"] if p["status"] == "kept") or "none",
            ],
        ],
        "notes": [],
    }
    return _page(header=header, record=record, views=views)


def _full_layout(graph: Graph) -> Placed:
    return layered(len(graph.nodes), [(e.src, e.dst) for e in graph.edges])


def _view(
    graph: Graph,
    cov: Coverage,
    *,
    title: str,
    full: Placed,
    marked: Iterable[int] = (),
    mark_label: str = "",
) -> dict[str, Any]:
    """One drawn graph: nodes with partition and reason, the full and the collapsed layout."""
    part = [CPU] * len(graph.nodes)
    index = {node.name: node.index for node in graph.nodes}
    for k, names in enumerate(cov.partitions):
        for name in names:
            part[index[name]] = k
    reasons = {v.index: (v.code, v.reason) for v in cov.rejected}
    for group in cov.dropped_trivial_groups:
        for name in group:
            reasons[index[name]] = ("dropped-trivial", DROPPED_TRIVIAL_REASON)
    marked = set(marked)
    nodes = [
        {
            "i": node.index,
            "name": node.name,
            "op": node.op_type,
            "part": part[node.index],
            "code": reasons.get(node.index, (None, None))[0],
            "reason": reasons.get(node.index, (None, None))[1],
            "inputs": [_describe_input(graph, name) for name in node.inputs if name],
            "marked": node.index in marked,
        }
        for node in graph.nodes
    ]
    units = _units(graph, part)
    unit_of = {i: u for u, members in enumerate(units) for i in members}
    collapsed_edges = sorted(
        {(unit_of[e.src], unit_of[e.dst]) for e in graph.edges if unit_of[e.src] != unit_of[e.dst]}
    )
    share = cov.macs_share
    return {
        "title": title,
        "format": cov.model_format,
        "rules": cov.rules,
        "summary": {
            "nodes": cov.nodes_in_graph,
            "supported": cov.nodes_supported,
            "partitions": len(cov.partitions),
            "partition_sizes": [len(p) for p in cov.partitions],
            "mac_share": share,
        },
        "mark_label": mark_label,
        "nodes": nodes,
        "full": full.to_dict(),
        "units": units,
        "collapsed": layered(len(units), collapsed_edges).to_dict(),
        "collapse_default": len(graph.nodes) > COLLAPSE_ABOVE and len(units) < len(graph.nodes),
    }


def _describe_input(graph: Graph, name: str) -> list[str]:
    """e.g. ``["input", "[1, 3, 640, 640]", "float"]``."""
    tensor = graph.tensor(name)
    if tensor is None:
        return [name, "unknown", "unknown"]
    return [name, fmt_shape(tensor.shape), dtype_name(tensor.elem_type)]


def _units(graph: Graph, part: Sequence[int]) -> list[list[int]]:
    """Drawn units in node order: chains of >= MIN_CHAIN supported nodes, else single nodes.

    A chain link a -> b: a's only consumer node is b, b's only producer node is a, both in
    the same CoreML partition. Nothing crosses a partition boundary inside a chain.
    """
    consumers: list[set[int]] = [set() for _ in graph.nodes]
    producers: list[set[int]] = [set() for _ in graph.nodes]
    for edge in graph.edges:
        consumers[edge.src].add(edge.dst)
        producers[edge.dst].add(edge.src)

    def link(a: int) -> int | None:
        if len(consumers[a]) != 1:
            return None
        (b,) = consumers[a]
        ok = len(producers[b]) == 1 and part[a] == part[b] != CPU
        return b if ok else None

    linked_from = {b: a for a in range(len(graph.nodes)) if (b := link(a)) is not None}
    units: list[list[int]] = []
    for start in range(len(graph.nodes)):
        if start in linked_from:
            continue  # inside a chain that starts earlier
        chain = [start]
        while (nxt := link(chain[-1])) is not None:
            chain.append(nxt)
        if len(chain) >= MIN_CHAIN:
            units.append(chain)
        else:
            units.extend([i] for i in chain)
    units.sort(key=lambda members: members[0])
    return units


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _page(*, header: dict[str, Any], record: dict[str, Any], views: list[dict[str, Any]]) -> str:
    data = {"header": header, "record": record, "views": views}
    # "</" inside a <script> element would end it early; JSON allows the escaped form.
    payload = json.dumps(data, separators=(",", ":"), sort_keys=True).replace("</", "<\\/")
    title = _escape(header["title"])
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>\n{_asset('page.css')}</style>\n</head>\n<body>\n"
        f'<script id="data" type="application/json">{payload}</script>\n'
        f"<script>\n{_asset('page.js')}</script>\n</body>\n</html>\n"
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
