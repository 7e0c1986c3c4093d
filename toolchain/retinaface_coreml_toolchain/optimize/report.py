"""The optimize record (docs/optimize.schema.json), its text table, and the equality gate.

``render`` works from the JSON dict, so ``--json`` and the table cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from retinaface_coreml_toolchain.coverage.report import DROPPED_TRIVIAL_REASON, FORMAT_NAMES
from retinaface_coreml_toolchain.optimize.equality import Difference
from retinaface_coreml_toolchain.optimize.errors import EqualityBroken
from retinaface_coreml_toolchain.optimize.predict import Prediction, cpu_feeding_coreml

SCHEMA_VERSION = 1
STAGES = ("in", "simplified", "out")
MIN_MAC_SHARE = 0.99  # target: at least this share of the MACs on CoreML


def coverage_cell(prediction: Prediction, version: str, model_format: str) -> dict[str, Any]:
    """One (ORT version, format) of one stage: the counts, MAC share and every CPU node."""
    cov = prediction.coverages[(version, model_format)]
    share = cov.macs_share  # toolchain/coverage/macs.py, counted by the predictor itself
    op_types = {node.name: node.op_type for node in prediction.graph.nodes}
    return {
        "nodes_in_graph": cov.nodes_in_graph,
        "nodes_supported": cov.nodes_supported,
        "partitions": len(cov.partitions),
        "coverage": round(cov.coverage, 6),
        "mac_share": None if share is None else round(share, 6),
        "cpu_nodes": [
            {"name": v.name, "op_type": v.op_type, "code": v.code, "reason": v.reason}
            for v in cov.rejected
        ]
        + [
            {
                "name": name,
                "op_type": op_types[name],
                "code": "dropped-trivial",
                "reason": DROPPED_TRIVIAL_REASON,
            }
            for group in cov.dropped_trivial_groups
            for name in group
        ],
        "cpu_feeding_coreml": cpu_feeding_coreml(prediction.graph, cov),
    }


def stage_record(
    *, nodes: int, prediction: Prediction, diffs: tuple[Difference, ...], versions, formats
) -> dict[str, Any]:
    worst = max(diffs, key=lambda d: d.relative, default=None)
    return {
        "nodes": nodes,
        "max_abs_diff": 0.0 if worst is None else worst.max_abs_diff,
        "relative_diff": 0.0 if worst is None else worst.relative,
        "outputs": [
            {"name": d.output, "max_abs_diff": d.max_abs_diff, "max_abs_value": d.max_abs_value}
            for d in diffs
        ],
        "coverage": {
            v: {fmt: coverage_cell(prediction, v, fmt) for fmt in formats} for v in versions
        },
    }


def targets(record: dict[str, Any]) -> dict[str, dict[str, bool | None]]:
    """Issue 9's targets for OUT, per ORT version, in the deciding format."""
    out, fmt = record["stages"]["out"], record["model_format"]
    result = {}
    for version, cells in out["coverage"].items():
        cell = cells[fmt]
        share = cell["mac_share"]
        result[version] = {
            "one_partition": cell["partitions"] == 1,
            "cpu_only_downstream": not cell["cpu_feeding_coreml"],
            "mac_share_99": None if share is None else share >= MIN_MAC_SHARE,
            "equal": out["relative_diff"] <= record["tolerance"],
        }
    return result


def check_equality(record: dict[str, Any]) -> None:
    """Raise EqualityBroken naming the first pass left out for changing the outputs."""
    for outcome in record["passes"]:
        if outcome["status"] == "breaks-equality":
            raise EqualityBroken(
                f"{record['model']}: pass {outcome['name']} breaks numerical equality "
                f"(max |diff| {outcome['max_abs_diff']:.3g} on output '{outcome['output']}', "
                f"max |value| {outcome['max_abs_value']:.3g}, tolerance "
                f"{record['tolerance']:g} x max |value|); it was left out of {record['output']}"
            )


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def render(record: dict[str, Any]) -> str:
    """Before/after table per ORT version and format, the passes, the nodes left on CPU."""
    shapes = ", ".join(f"{n}={'x'.join(map(str, s))}" for n, s in record["input_shapes"].items())
    deciding = FORMAT_NAMES[record["model_format"]]
    lines = [
        f"{record['model']} -> {record['output']}  (inputs {shapes}; passes decided by "
        f"{deciding} under ORT {', '.join(record['ort_versions'])}; {record['seconds']:.1f} s)",
        "",
    ]
    header = (
        f"{'stage':<10} {'ORT':<5} {'format':<13} {'nodes':>5} {'CoreML nodes':>12} "
        f"{'partitions':>10} {'MACs on CoreML':>14} {'max |diff|':>10}"
    )
    lines += [header, "-" * len(header)]
    for stage in STAGES:
        rec = record["stages"][stage]
        for version, cells in rec["coverage"].items():
            for fmt, cell in cells.items():
                lines.append(
                    f"{stage:<10} {version:<5} {FORMAT_NAMES[fmt]:<13} "
                    f"{cell['nodes_in_graph']:>5} "
                    f"{cell['nodes_supported']:>6}/{cell['nodes_in_graph']:<5} "
                    f"{cell['partitions']:>10} {_share(cell['mac_share']):>14} "
                    f"{rec['max_abs_diff']:>10.2e}"
                )
    lines += ["", "passes:"]
    for p in record["passes"]:
        scores = "; ".join(
            f"ORT {v}: {p['scores_before'][v][0]} partitions/{p['scores_before'][v][1]} CPU -> "
            f"{p['scores_after'][v][0]}/{p['scores_after'][v][1]}"
            for v in p["scores_before"]
        )
        diff = "" if p["max_abs_diff"] is None else f"; max |diff| {p['max_abs_diff']:.2e}"
        lines.append(
            f"  {p['name']:<24} {p['status']:<15} {p['rewrites']:>2} rewrite(s)"
            f"{'  ' + scores if scores else ''}{diff}"
        )
    lines += ["", "targets (out, deciding format):"]
    for version, t in record["targets"].items():
        marks = ", ".join(
            f"{k} {'-' if v is None else ('yes' if v else 'NO')}" for k, v in t.items()
        )
        lines.append(f"  ORT {version}: {marks}")
    lines += ["", "left on CPU in out:"]
    for version, cells in record["stages"]["out"]["coverage"].items():
        for fmt, cell in cells.items():
            nodes = cell["cpu_nodes"]
            lines.append(f"  [ORT {version}, {FORMAT_NAMES[fmt]}] {len(nodes) or 'none'}")
            lines += [f"    {n['op_type']} {n['name']}: {n['reason']}" for n in nodes]
    return "\n".join(lines)
