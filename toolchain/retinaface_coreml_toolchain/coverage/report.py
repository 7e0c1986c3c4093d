"""The coverage records, their JSON dict (docs/coverage.schema.json) and the text table.

``render`` works from the JSON dict, so ``--json`` and the table cannot drift apart.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from retinaface_coreml_toolchain.coverage.graph import Graph
from retinaface_coreml_toolchain.coverage.macs import MacCount
from retinaface_coreml_toolchain.coverage.support import Verdict

# 2: adds "macs" (the share of multiply-accumulates on CoreML) and a per-rejected-node "macs".
SCHEMA_VERSION = 2

FORMAT_NAMES = {"mlprogram": "MLProgram", "neuralnetwork": "NeuralNetwork"}

# Why a supported node of a dropped group (Coverage.dropped_trivial_groups) stays on the CPU.
DROPPED_TRIVIAL_REASON = "in a group of trivial nodes only, which ORT 1.32 leaves on the CPU"

# One phrase per rejection code, for the summary grouped by op type and reason.
CODE_SUMMARY = {
    "no-builder": "no CoreML builder for this op type",
    "format": "op not supported in this model format",
    "opset": "op version outside the supported opset range",
    "no-shape": "an input has no shape information",
    "dynamic-shape": "needs static input dimensions",
    "zero-dim": "an input has a 0 dimension",
    "dim-limit": "a dimension exceeds CoreML's 16384 limit",
    "rank": "unsupported rank",
    "input-type": "unsupported input element type (e.g. int64 shape arithmetic)",
    "external-data": "initializer stored as external data",
    "input-not-constant": "an input must be a constant initializer",
    "scalar-indices": "scalar Gather indices",
    "nn-rank": "NeuralNetwork format needs another rank",
    "nn-axis": "NeuralNetwork format needs the channel axis",
    "nn-pattern": "NeuralNetwork format supports only a specific pattern",
    "attribute": "unsupported attribute or input value",
    "inputs": "unsupported number or kind of inputs",
    "empty": "empty tensor or range",
}


@dataclass(frozen=True, kw_only=True)
class Coverage:
    """What GetCapability would decide and log for one model format."""

    model_format: str  # "mlprogram" | "neuralnetwork"
    rules: str  # the rule table that answered, e.g. "1.32"
    nodes_in_graph: int
    partitions: tuple[tuple[str, ...], ...]  # node names per partition, ORT's order
    dropped_trivial_groups: tuple[tuple[str, ...], ...]
    verdicts: tuple[Verdict, ...]
    macs: MacCount  # per node of the analysed graph; the same for every format
    macs_on_coreml: int  # MACs of the nodes inside the partitions

    @property
    def nodes_supported(self) -> int:
        """S as ORT logs it: nodes inside the returned partitions."""
        return sum(len(p) for p in self.partitions)

    @property
    def coverage(self) -> float:
        return self.nodes_supported / self.nodes_in_graph if self.nodes_in_graph else 1.0

    @property
    def macs_share(self) -> float | None:
        """Share of the counted MACs inside CoreML partitions; None for a graph with none."""
        total = self.macs.total
        return self.macs_on_coreml / total if total else None

    @property
    def rejected(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if not v.supported)

    @property
    def log_line(self) -> str:
        """The GetCapability summary line ORT would print (spec §2.4)."""
        return (
            "CoreMLExecutionProvider::GetCapability, number of partitions supported by CoreML: "
            f"{len(self.partitions)} number of nodes in the graph: {self.nodes_in_graph} "
            f"number of nodes supported by CoreML: {self.nodes_supported}"
        )

    def to_dict(self) -> dict[str, Any]:
        summary = Counter((v.op_type, v.code) for v in self.rejected)
        return {
            "model_format": self.model_format,
            "rules": self.rules,
            "nodes_in_graph": self.nodes_in_graph,
            "nodes_supported": self.nodes_supported,
            "nodes_judged_supported": sum(v.supported for v in self.verdicts),
            "partitions": len(self.partitions),
            "coverage": round(self.coverage, 6),
            "partition_sizes": [len(p) for p in self.partitions],
            "partition_nodes": [list(p) for p in self.partitions],
            "dropped_trivial_groups": [list(g) for g in self.dropped_trivial_groups],
            "rejected": [
                {
                    "index": v.index,
                    "name": v.name,
                    "op_type": v.op_type,
                    "code": v.code,
                    "reason": v.reason,
                    "macs": None
                    if v.index in self.macs.uncounted
                    else self.macs.per_node.get(v.index, 0),
                }
                for v in self.rejected
            ],
            "macs": {
                "total": self.macs.total,
                "on_coreml": self.macs_on_coreml,
                "share": None if self.macs_share is None else round(self.macs_share, 6),
                "uncounted": [self.verdicts[i].name for i in self.macs.uncounted],
                "dynamic_batch_as_one": self.macs.dynamic_batch_as_one,
            },
            "summary": [
                {
                    "op_type": op_type,
                    "code": code,
                    "count": count,
                    "meaning": CODE_SUMMARY.get(code or "", code or ""),
                }
                for (op_type, code), count in sorted(summary.items(), key=lambda kv: kv[0])
            ],
            "log_line": self.log_line,
        }


@dataclass(frozen=True, kw_only=True)
class CoverageReport:
    """Coverage of one model, per model format, under one rule table."""

    model: str  # file name only: the JSON carries no absolute paths
    graph_ort_version: str  # the onnxruntime that wrote the level-1 graph
    rules: str
    requested_ort_version: str | None
    require_static_shapes: bool
    coreml_version: int
    notes: tuple[str, ...]
    coverages: tuple[Coverage, ...]
    graph: Graph | None = field(default=None, repr=False, compare=False)  # what was judged

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "model": self.model,
            "graph_onnxruntime": self.graph_ort_version,
            "rules": self.rules,
            "requested_ort_version": self.requested_ort_version,
            "require_static_shapes": self.require_static_shapes,
            "coreml_version": self.coreml_version,
            "notes": list(self.notes),
            "formats": {c.model_format: c.to_dict() for c in self.coverages},
        }


def render(record: dict[str, Any]) -> str:
    """The human table for a CoverageReport dict."""
    lines = [
        f"{record['model']}: CoreML EP coverage under ORT {record['rules']} rules "
        f"(level-1 graph from onnxruntime {record['graph_onnxruntime']}"
        f"{', RequireStaticInputShapes' if record['require_static_shapes'] else ''})"
    ]
    lines += [f"note: {note}" for note in record["notes"]]
    for fmt, cov in sorted(record["formats"].items()):
        lines.append("")
        lines.append(
            f"[{FORMAT_NAMES.get(fmt, fmt)}]  nodes in graph: {cov['nodes_in_graph']}  "
            f"supported: {cov['nodes_supported']} ({cov['coverage']:.1%})  "
            f"partitions: {cov['partitions']}"
        )
        lines.append(f"  {render_macs(cov['macs'])}")
        if cov["partition_sizes"]:
            lines.append(f"  partition sizes: {', '.join(map(str, cov['partition_sizes']))}")
        for group in cov["dropped_trivial_groups"]:
            lines.append(f"  dropped (all-trivial group, left on CPU): {', '.join(group)}")
        if cov["summary"]:
            lines.append(f"  rejected nodes by op type and reason ({len(cov['rejected'])}):")
            width = max(len(row["op_type"]) for row in cov["summary"])
            for row in cov["summary"]:
                lines.append(f"    {row['op_type']:<{width}}  {row['count']:>3}  {row['meaning']}")
            lines.append("  rejected nodes:")
            for node in cov["rejected"]:
                macs = f" [{format_macs(node['macs'])} MACs]" if node["macs"] else ""
                lines.append(f"    {node['op_type']} {node['name']}{macs}: {node['reason']}")
        lines.append(f"  ORT would log: {cov['log_line']}")
    return "\n".join(lines)


def format_macs(count: int) -> str:
    """e.g. ``81.9 k``, ``429.0 M``, ``17.35 G``."""
    for scale, unit, digits in ((1e9, "G", 2), (1e6, "M", 1), (1e3, "k", 1)):
        if count >= scale:
            return f"{count / scale:.{digits}f} {unit}"
    return str(count)


def render_macs(macs: dict[str, Any]) -> str:
    """One format's compute-share line, e.g. ``MACs on CoreML: 99.96% (428.8 M of 428.9 M)``."""
    if macs["share"] is None:
        text = "MACs on CoreML: n/a (no Conv, MatMul, Gemm or Einsum with known shapes)"
    else:
        # Rounded down, so a share short of all never prints as 100.00%.
        percent = math.floor(macs["share"] * 10000) / 100
        text = (
            f"MACs on CoreML: {percent:.2f}% ({format_macs(macs['on_coreml'])} of "
            f"{format_macs(macs['total'])})"
        )
    notes = []
    if macs["uncounted"]:
        notes.append(f"{len(macs['uncounted'])} MAC nodes uncounted: shapes unknown")
    if macs["dynamic_batch_as_one"]:
        notes.append("dynamic batch counted as 1")
    return text + (f"; {'; '.join(notes)}" if notes else "")
