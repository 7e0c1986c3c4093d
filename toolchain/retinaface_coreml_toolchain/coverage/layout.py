"""Where each node of a drawn graph goes: igraph's layered (Sugiyama) layout, top to bottom.

igraph (a C core in a binary wheel, kept up) places an 855-node graph in about a second;
grandalf, the pure-Python Sugiyama on PyPI, took five times as long here and was last
released in 2023. Graphviz's ``dot`` would need a system package on every CI machine.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Pixels per layout unit: igraph puts neighbours in a layer 1 apart and layers 1 apart.
X_UNIT, Y_UNIT = 150, 56
MARGIN = 80  # more than half a node box (128 px wide in page.js)


@dataclass(frozen=True, kw_only=True)
class Placed:
    """Node centres and edge polylines in pixels, for vertices 0..n-1 and the given edges."""

    xy: tuple[tuple[float, float], ...]
    edges: tuple[tuple[int, int, tuple[tuple[float, float], ...]], ...]  # src, dst, points
    width: float
    height: float

    def to_dict(self) -> dict:
        return {
            "xy": [[round(x, 1), round(y, 1)] for x, y in self.xy],
            "edges": [
                [s, d, [[round(x, 1), round(y, 1)] for x, y in pts]] for s, d, pts in self.edges
            ],
            "width": round(self.width, 1),
            "height": round(self.height, 1),
        }


def layered(count: int, edges: Sequence[tuple[int, int]]) -> Placed:
    """Lay out a DAG of ``count`` vertices; each edge's polyline runs source to destination."""
    import igraph

    unique = sorted(set(edges))
    graph = igraph.Graph(n=count, edges=unique, directed=True)
    layout = graph.layout_sugiyama(hgap=1, vgap=1)
    coords = [tuple(c) for c in layout.coords]  # then the dummy vertices of long edges
    moved = separated(coords)
    min_x = min((x for x, _ in moved), default=0.0)

    def px(point: Sequence[float]) -> tuple[float, float]:
        return (MARGIN + (point[0] - min_x) * X_UNIT, MARGIN + point[1] * Y_UNIT)

    xy = tuple(px(c) for c in moved[:count])
    shift = _layer_shift(coords, moved)
    routed = []
    for (src, dst), bends in zip(unique, layout.edge_routing, strict=True):
        routed.append((src, dst, (xy[src], *(px(shift(b)) for b in bends), xy[dst])))
    width = max((x for x, _ in xy), default=0.0) + MARGIN
    for _, _, points in routed:
        width = max(width, *(x + MARGIN for x, _ in points))
    height = max((y for _, y in xy), default=0.0) + MARGIN
    return Placed(xy=xy, edges=tuple(routed), width=width, height=height)


def separated(coords: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The same layers and order, each vertex at least 1 unit right of its left neighbour.

    igraph's Sugiyama placement (python-igraph 1.0) can put two vertices of a layer 0.5 apart,
    or on the same spot (MTL's level-1 graph had 34 such pairs), which draws boxes over each
    other; a left-to-right sweep per layer restores the gap, dummy vertices included.
    """
    placed = list(coords)
    for members in _layers(coords).values():
        for left, right in itertools.pairwise(members):
            x = max(placed[right][0], placed[left][0] + 1.0)
            placed[right] = (x, placed[right][1])
    return placed


def _layers(coords: Sequence[tuple[float, float]]) -> dict[float, list[int]]:
    """Vertex indices by layer (y), left to right (ties by index)."""
    layers: dict[float, list[int]] = {}
    for v in sorted(range(len(coords)), key=lambda v: (coords[v][0], v)):
        layers.setdefault(coords[v][1], []).append(v)
    return layers


def _layer_shift(
    before: Sequence[tuple[float, float]], after: Sequence[tuple[float, float]]
) -> Callable[[Sequence[float]], tuple[float, float]]:
    """Moves an edge's bend point with its layer: interpolated between the moved vertices on
    either side of it, so the order along the layer is kept."""
    import numpy as np

    table = {
        y: (np.array([before[v][0] for v in members]), np.array([after[v][0] for v in members]))
        for y, members in _layers(before).items()
    }

    def shift(point: Sequence[float]) -> tuple[float, float]:
        x, y = float(point[0]), float(point[1])
        if y not in table:
            return x, y
        old, new = table[y]
        if x <= old[0]:
            return x + new[0] - old[0], y
        if x >= old[-1]:
            return x + new[-1] - old[-1], y
        return float(np.interp(x, old, new)), y

    return shift
