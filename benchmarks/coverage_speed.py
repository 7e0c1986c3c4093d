"""How long `toolchain coverage` takes on an ~800-node model (target: under 2 s).

Builds a chain of Conv -> Relu -> Transpose -> Sigmoid blocks with onnx.helper, a Floor (no
CoreML builder) every 25 blocks, then times graph load (ORT level-1 + shape inference), the
per-node rules and the partitioning for both model formats. Prints one table; run with
``python benchmarks/coverage_speed.py``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from retinaface_coreml_toolchain.coverage.api import analyse
from retinaface_coreml_toolchain.coverage.graph import load_graph
from retinaface_coreml_toolchain.coverage.rules import table_for

BLOCKS = 200
RUNS = 5
LIMIT_S = 2.0


def build_model(path: Path) -> None:
    """~800 nodes: 200 blocks of 4, plus a rejected Floor every 25 blocks."""
    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "input"
    for b in range(BLOCKS):
        w = f"w{b}"
        inits.append(numpy_helper.from_array(rng.standard_normal((8, 8, 3, 3), np.float32), w))
        nodes += [
            helper.make_node("Conv", [prev, w], [f"c{b}"], name=f"conv{b}", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{b}"], [f"r{b}"], name=f"relu{b}"),
            helper.make_node("Transpose", [f"r{b}"], [f"t{b}"], name=f"tr{b}", perm=[0, 1, 3, 2]),
            helper.make_node("Sigmoid", [f"t{b}"], [f"s{b}"], name=f"sig{b}"),
        ]
        prev = f"s{b}"
        if b % 25 == 24:
            nodes.append(helper.make_node("Floor", [prev], [f"f{b}"], name=f"floor{b}"))
            prev = f"f{b}"
    graph = helper.make_graph(
        nodes,
        "bench",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 8, 16, 16])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)],
        initializer=inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "bench.onnx"
        build_model(model)
        table = table_for("1.32")
        rows = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            graph = load_graph(model)
            t1 = time.perf_counter()
            coverages = [
                analyse(graph, table, model_format=f, require_static_shapes=False)
                for f in ("mlprogram", "neuralnetwork")
            ]
            t2 = time.perf_counter()
            rows.append((t1 - t0, t2 - t1, t2 - t0))
    load, rules, total = (statistics.median(col) for col in zip(*rows, strict=True))
    cov = coverages[0]
    print(
        f"model: {cov.nodes_in_graph} nodes (level-1), {len(cov.partitions)} partitions, "
        f"{cov.nodes_supported} supported (MLProgram, ORT 1.32 rules); {RUNS} runs"
    )
    print(f"{'stage':<34}{'median s':>10}")
    print(f"{'graph load (ORT level-1 + shapes)':<34}{load:>10.3f}")
    print(f"{'rules + partitioning (2 formats)':<34}{rules:>10.3f}")
    print(f"{'total':<34}{total:>10.3f}")
    print(f"under {LIMIT_S:.0f} s: {'yes' if total < LIMIT_S else 'NO'}")


if __name__ == "__main__":
    main()
