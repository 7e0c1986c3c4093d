"""Partitioning where grouping matters: ORT's wave walk on tiny graphs (Floor has no builder)."""

from __future__ import annotations

import numpy as np
from onnx import helper

from retinaface_coreml_toolchain.coverage.api import analyse
from retinaface_coreml_toolchain.coverage.graph import Graph
from retinaface_coreml_toolchain.coverage.partition import nodes_in_topological_order
from retinaface_coreml_toolchain.coverage.rules import table_for
from tests.toolchain.coverage.coverage_graphs import F, make_graph


def node(op: str, inputs: list[str], output: str, **attrs):
    return helper.make_node(op, inputs, [output], name=output, **attrs)


def run(graph: Graph, version: str = "1.24", fmt: str = "mlprogram"):
    return analyse(graph, table_for(version), model_format=fmt, require_static_shapes=False)


def chain(*ops: str) -> Graph:
    nodes, prev = [], "x"
    for i, op in enumerate(ops):
        attrs = {"perm": [1, 0]} if op == "Transpose" else {}
        nodes.append(node(op, [prev], f"{op.lower()}{i}", **attrs))
        prev = f"{op.lower()}{i}"
    return make_graph(nodes, [("x", F, [2, 2])], [(prev, F, None)])


def test_rejected_node_between_two_supported_chains() -> None:
    cov = run(chain("Relu", "Sigmoid", "Floor", "Tanh", "Relu"))
    assert cov.partitions == (("relu0", "sigmoid1"), ("tanh3", "relu4"))
    assert [v.name for v in cov.rejected] == ["floor2"]
    assert cov.log_line == (
        "CoreMLExecutionProvider::GetCapability, number of partitions supported by CoreML: 2 "
        "number of nodes in the graph: 5 number of nodes supported by CoreML: 4"
    )


def test_parallel_branches_rejected_node_on_group_border_splits() -> None:
    # a -> Floor -> c ; a -> d ; Add(c, d): Floor sits on the border of {a, d}, so c and the Add
    # wait for the next wave.
    graph = make_graph(
        [node("Relu", ["x"], "a"), node("Floor", ["a"], "b"), node("Relu", ["b"], "c"),
         node("Sigmoid", ["a"], "d"), node("Add", ["c", "d"], "e")],
        [("x", F, [2])], [("e", F, None)],
    )  # fmt: skip
    assert run(graph).partitions == (("a", "d"), ("c", "e"))


def test_parallel_branches_rejected_root_does_not_split() -> None:
    # Floor takes the graph input directly, so it is never on a border: one group, unconnected
    # nodes included (ORT: "nodes within the same group do not necessarily have to be connected").
    graph = make_graph(
        [node("Relu", ["x"], "a"), node("Sigmoid", ["a"], "b"), node("Floor", ["x"], "c"),
         node("Tanh", ["c"], "d"), node("Add", ["b", "d"], "e")],
        [("x", F, [2])], [("e", F, None)],
    )  # fmt: skip
    cov = run(graph)
    assert len(cov.partitions) == 1
    assert sorted(cov.partitions[0]) == ["a", "b", "d", "e"]


def test_rejected_node_feeding_only_a_graph_output() -> None:
    cov = run(chain("Relu", "Sigmoid", "Floor"))
    assert cov.partitions == (("relu0", "sigmoid1"),)
    assert (cov.nodes_supported, cov.nodes_in_graph) == (2, 3)


def test_supported_island_is_its_own_partition() -> None:
    cov = run(chain("Floor", "Relu", "Floor"))
    assert cov.partitions == (("relu1",),)  # no minimum partition size


def test_trivial_only_group_dropped_from_1_32() -> None:
    graph = chain("Floor", "Transpose", "Floor")
    assert run(graph, "1.24").partitions == (("transpose1",),)
    cov = run(graph, "1.32")
    assert cov.partitions == ()
    assert cov.dropped_trivial_groups == (("transpose1",),)
    assert (cov.nodes_supported, sum(v.supported for v in cov.verdicts)) == (0, 1)


def test_group_with_one_non_trivial_node_kept_in_1_32() -> None:
    cov = run(chain("Floor", "Transpose", "Relu", "Floor"), "1.32")
    assert cov.partitions == (("transpose1", "relu2"),)
    assert cov.dropped_trivial_groups == ()


def test_topological_order_is_graph_viewer_default() -> None:
    # ReverseDFSFrom(leaves) with inputs sorted by index: a diamond visits producers in order.
    graph = make_graph(
        [node("Relu", ["x"], "a"), node("Relu", ["a"], "b"), node("Relu", ["a"], "c"),
         node("Add", ["b", "c"], "d")],
        [("x", F, [2])], [("d", F, None)],
    )  # fmt: skip
    assert nodes_in_topological_order(graph) == [0, 2, 1, 3]


def test_constant_initializer_inputs_make_no_edges() -> None:
    graph = make_graph(
        [node("Mul", ["x", "w"], "a"), node("Floor", ["a"], "b"), node("Mul", ["b", "w"], "c")],
        [("x", F, [2])], [("c", F, None)], {"w": np.ones(2, np.float32)},
    )  # fmt: skip
    assert run(graph).partitions == (("a",), ("c",))
