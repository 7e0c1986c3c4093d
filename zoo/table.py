"""`make zoo`'s last step: measure the exported models and print one before/after table.

``python -m zoo.table [--dir models/zoo] [--no-optimize]`` (toolchain venv). Writes
``<dir>/zoo.json`` (the record) and ``<dir>/table.md`` (the table printed), both atomically.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path
from typing import Any

from zoo.measure import FORMATS, VERSIONS, measure

FORMAT_NAMES = {"mlprogram": "MLProgram", "neuralnetwork": "NeuralNetwork"}
TITLES = {"mtl": "MTL", "star": "STAR"}


def _share(value: float | None) -> str:
    # Rounded down, as the coverage report does: short of all never shows as 100.00%.
    return "-" if value is None else f"{math.floor(value * 10000) / 100:.2f}%"


def cell_text(cell: dict[str, Any] | None) -> str:
    """e.g. ``282/292 in 8, 99.96%``: CoreML nodes of all, partitions, MAC share."""
    if cell is None:
        return "-"
    return (
        f"{cell['nodes_supported']}/{cell['nodes_in_graph']} in {cell['partitions']}, "
        f"{_share(cell['mac_share'])}"
    )


def after_cells(run: dict[str, Any] | None, version: str, fmt: str) -> tuple[str, str, str]:
    """(OUT cell, max |diff| relative to the output's max |value|, seconds) of one optimize run."""
    if run is None:
        return "-", "-", "-"
    record = run["record"]
    try:
        out = record["stages"]["out"]
        cell = out["coverage"][version][fmt]
        seconds = record.get("seconds", run["wall_seconds"])
        return cell_text(cell), f"{out['relative_diff']:.1e}", f"{seconds:.1f}"
    except (KeyError, TypeError):
        why = run["error"] or f"exit {run['exit_code']}, no record"
        return f"failed: {why}", "-", f"{run['wall_seconds']:.1f}"


def render(record: dict[str, Any]) -> str:
    """One Markdown table: per model, ORT version and format, before and after optimize."""
    lines = [
        "| model | ORT | format | dynamic batch | batch 1 + onnxsim | after `toolchain optimize` "
        "| max rel. diff | optimize s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in record["models"].items():
        for version in VERSIONS:
            for fmt in FORMATS:
                after = after_cells(entry["optimize"].get(fmt), version, fmt)
                lines.append(
                    f"| {TITLES.get(name, name)} | {version} | {FORMAT_NAMES[fmt]} | "
                    f"{cell_text(entry['dynamic']['cells'][version][fmt])} | "
                    f"{cell_text(entry['batch1']['cells'][version][fmt])} | "
                    f"{after[0]} | {after[1]} | {after[2]} |"
                )
    lines += ["", *notes(record)]
    return "\n".join(lines)


def notes(record: dict[str, Any]) -> list[str]:
    """What the cells mean, and what was not measured."""
    text = [
        "Cells: CoreML nodes / level-1 nodes, in P partitions, share of MACs on CoreML "
        f"(predicted by `toolchain coverage`; level-1 graphs written by onnxruntime "
        f"{record['onnxruntime']}). After: each format's column comes from the optimize run "
        "that format decided; max rel. diff is OUT vs IN, max |diff| / max |value| over the "
        "check inputs.",
    ]
    uncounted = {
        TITLES.get(n, n): e["dynamic"]["cells"][VERSIONS[0]][FORMATS[0]]["macs_uncounted"]
        for n, e in record["models"].items()
    }
    for title, count in uncounted.items():
        if count:
            text.append(
                f"{title}, dynamic batch: {count} Conv/MatMul nodes have unknown spatial shapes "
                "there; the MAC share counts the others only."
            )
    if record["optimize"] != "ran":
        text.append(f"`toolchain optimize`: {record['optimize']}; the after columns are empty.")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.table", description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("models/zoo"))
    parser.add_argument("--no-optimize", action="store_true", help="Only the before columns.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    from retinaface_coreml_toolchain.errors import ToolchainError
    from retinaface_coreml_toolchain.files import write_bytes, write_json

    try:
        record = measure(args.dir, optimize=not args.no_optimize)
    except (FileNotFoundError, ToolchainError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = render(record)
    write_json(args.dir / "zoo.json", record)
    write_bytes(args.dir / "table.md", (table + "\n").encode())
    print(table)
    failed = [
        f"{name} [{fmt}]"
        for name, entry in record["models"].items()
        for fmt, run in entry["optimize"].items()
        if run["exit_code"] != 0
    ]
    if failed:
        print(f"error: toolchain optimize failed for {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
