"""Partition formation: a port of ORT's CreateSupportedPartitionNodeGroups.

Ported from onnxruntime/core/providers/partitioning_utils.cc (and the topological order of
onnxruntime/core/graph/graph_viewer.cc + Graph::ReverseDFSFrom in graph.cc), keeping ORT's
variable names (``in_degree``, ``nodes_to_process``, ``nodes_to_process_with_next_group``,
``supported_group``, ``supported_group_border``) so a diff against the C++ stays readable.
Written from reading the C++; no code copied.

Node indices are positions in the saved post-level-1 graph, not the in-memory indices ORT had on
the Mac. That only changes the order of nodes inside a group, not the groups: a node joins wave k
exactly when all its producers are done by then and it is supported or none of its producers
joined wave k's group, a fixpoint that does not depend on the visiting order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from retinaface_coreml_toolchain.coverage.graph import Graph

IsNodeSupportedFn = Callable[[int], bool]
OnGroupClosedFn = Callable[[Sequence[int]], bool]


def nodes_in_topological_order(graph: Graph) -> list[int]:
    """GraphViewer's DEFAULT order: reverse DFS from the leaf nodes, inputs sorted by index."""
    leaf_nodes = [node.index for node in graph.nodes if not graph.output_edges(node.index)]
    stack: list[tuple[int, bool]] = [(index, False) for index in leaf_nodes]
    visited = [False] * len(graph.nodes)
    order: list[int] = []
    while stack:
        index, leave = stack.pop()
        if leave:
            order.append(index)
            continue
        if visited[index]:
            continue
        visited[index] = True
        stack.append((index, True))
        # InputNodes iterates input edges (one per edge); NodeCompare sorts by index.
        for src in sorted(edge.src for edge in graph.input_edges(index)):
            if not visited[src]:
                stack.append((src, False))
    return order


def create_supported_partition_node_groups(
    graph: Graph,
    is_node_supported_fn: IsNodeSupportedFn,
    on_group_closed_fn: OnGroupClosedFn | None = None,
) -> tuple[list[list[int]], list[list[int]]]:
    """Greedy wave partitioning; returns (kept groups, groups the callback dropped).

    Every node is taken to be unassigned (the CoreML EP first in the provider list), so ORT's
    "already assigned to another EP" test never fires here.
    """
    supported_groups: list[list[int]] = []
    dropped_groups: list[list[int]] = []
    in_degree: dict[int, int] = {}
    nodes_to_process: deque[int] = deque()
    nodes_to_process_with_next_group: deque[int] = deque()

    for node_index in nodes_in_topological_order(graph):
        node_input_edge_count = len(graph.input_edges(node_index))
        in_degree[node_index] = node_input_edge_count
        if node_input_edge_count == 0:
            nodes_to_process.append(node_index)

    supported_group: list[int] = []
    supported_group_border: set[int] = set()

    def close_group() -> None:
        nonlocal supported_group
        if supported_group:
            keep_partition = on_group_closed_fn is None or on_group_closed_fn(supported_group)
            (supported_groups if keep_partition else dropped_groups).append(supported_group)
            supported_group = []
            supported_group_border.clear()

    num_nodes_processed = 0
    while nodes_to_process or nodes_to_process_with_next_group:
        if not nodes_to_process:
            close_group()
            nodes_to_process, nodes_to_process_with_next_group = (
                nodes_to_process_with_next_group,
                nodes_to_process,
            )
            continue

        node = nodes_to_process.popleft()
        is_node_supported = is_node_supported_fn(node)

        if not is_node_supported and node in supported_group_border:
            # an unsupported node on the border waits for the next group
            nodes_to_process_with_next_group.append(node)
            continue

        if is_node_supported:
            supported_group.append(node)
            supported_group_border.discard(node)

        for edge in graph.output_edges(node):
            downstream_node = edge.dst
            if is_node_supported:
                supported_group_border.add(downstream_node)
            in_degree[downstream_node] -= 1
            if in_degree[downstream_node] == 0:
                nodes_to_process.append(downstream_node)

        num_nodes_processed += 1

    close_group()
    if num_nodes_processed != len(in_degree):  # ORT_ENFORCE in the C++: a cycle
        raise ValueError(f"processed {num_nodes_processed} of {len(in_degree)} nodes")
    return supported_groups, dropped_groups
