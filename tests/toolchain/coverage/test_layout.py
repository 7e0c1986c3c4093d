"""coverage/layout.py: no two boxes of a layer drawn over each other; every edge drawn."""

from __future__ import annotations

import itertools

import pytest

from retinaface_coreml_toolchain.coverage.layout import X_UNIT, layered

# igraph's Sugiyama placement put vertices 4 and 6 of this DAG 0.5 units apart (python-igraph
# 1.0); MTL's level-1 graph had 34 such pairs, some on the very same spot.
CLOSE_IN_IGRAPH = (8, [(0, 7), (1, 2), (2, 3), (2, 4), (4, 5), (4, 7)])
DENSE = (9, [(0, 2), (0, 5), (0, 7), (0, 8), (1, 2), (1, 4), (1, 7), (1, 8), (2, 3), (2, 4),
             (2, 5), (2, 6), (2, 8), (3, 6), (3, 7), (4, 6), (4, 8)])  # fmt: skip


@pytest.mark.parametrize(("count", "edges"), [CLOSE_IN_IGRAPH, DENSE], ids=["close", "dense"])
def test_boxes_of_a_layer_stay_a_unit_apart_and_every_edge_joins_its_ends(count, edges) -> None:
    placed = layered(count, edges)
    layers: dict[float, list[float]] = {}
    for x, y in placed.xy:
        layers.setdefault(y, []).append(x)
    gaps = [b - a for xs in layers.values() for a, b in itertools.pairwise(sorted(xs))]
    assert min(gaps) >= X_UNIT
    assert [(src, dst) for src, dst, _ in placed.edges] == sorted(edges)
    for src, dst, points in placed.edges:
        assert points[0] == placed.xy[src] and points[-1] == placed.xy[dst]
    assert placed.width >= max(x for x, _ in placed.xy) and placed.height > 0
