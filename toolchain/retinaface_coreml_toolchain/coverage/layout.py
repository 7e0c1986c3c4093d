"""Where each node of a drawn graph goes: igraph's layered (Sugiyama) layout, top to bottom.

igraph (a C core in a binary wheel, kept up) places an 855-node graph in about a second;
grandalf, the pure-Python Sugiyama on PyPI, took five times as long here and was last
released in 2023. Graphviz's ``dot`` would need a system package on every CI machine.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    coords = [tuple(c) for c in layout.coords[:count]]
    min_x = min((x for x, _ in coords), default=0.0)

    def px(point: Sequence[float]) -> tuple[float, float]:
        return (MARGIN + (point[0] - min_x) * X_UNIT, MARGIN + point[1] * Y_UNIT)

    xy = tuple(px(c) for c in coords)
    routed = []
    for (src, dst), bends in zip(unique, layout.edge_routing, strict=True):
        routed.append((src, dst, (xy[src], *(px(b) for b in bends), xy[dst])))
    width = max((x for x, _ in xy), default=0.0) + MARGIN
    for _, _, points in routed:
        width = max(width, *(x + MARGIN for x, _ in points))
    height = max((y for _, y in xy), default=0.0) + MARGIN
    return Placed(xy=xy, edges=tuple(routed), width=width, height=height)
