"""Multiply-accumulates per node, counted from the level-1 graph's shapes.

What is counted (one MAC = one multiply and one add of a dot product):
- Conv: every output element is a dot product over ``C/group x kernel`` inputs.
- ConvTranspose: every input element is scattered into ``M/group x kernel`` outputs.
- MatMul, Gemm: ``output elements x K`` (the shared, contracted dimension).
- Einsum with two or more operands: the product of the sizes of all distinct subscripts (the
  naive loop nest; for ``bij,bjk->bik`` that is ``b x i x j x k``).

Everything else counts 0 MACs, on purpose: elementwise ops, BatchNormalization (a scale and a
shift per element, which ORT folds into a preceding Conv anyway), pooling, reductions, Resize,
data movement. They are memory-bound and at most a few per cent of a CNN's arithmetic; counting
them as MACs would make a CPU-side ``Mul`` look as heavy as a convolution.

A dynamic leading (batch) dimension is counted as 1, so a dynamic-batch model gets its
per-sample MACs. Any other dimension ORT cannot name (e.g. a height computed at run time), or a
shape it does not know, makes the node *uncounted*: listed, never guessed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from retinaface_coreml_toolchain.coverage.graph import DYNAMIC, Graph, Node


@dataclass(frozen=True, kw_only=True)
class MacCount:
    """MACs per node index; ``uncounted``: MAC ops whose shapes were unknown."""

    per_node: Mapping[int, int]
    uncounted: tuple[int, ...]
    dynamic_batch_as_one: bool  # a dynamic leading dimension entered some count as 1

    @property
    def total(self) -> int:
        return sum(self.per_node.values())

    def of(self, indices: Iterable[int]) -> int:
        """Sum over the given node indices."""
        return sum(self.per_node.get(i, 0) for i in indices)


class _Unknown(Exception):
    """A shape the count needs is missing."""


def _shape(graph: Graph, name: str, dynamic: list[bool]) -> tuple[int, ...]:
    tensor = graph.tensor(name) if name else None
    if tensor is None or tensor.shape is None or DYNAMIC in tensor.shape[1:]:
        raise _Unknown(name)
    if tensor.shape and tensor.shape[0] == DYNAMIC:
        dynamic.append(True)
        return (1, *tensor.shape[1:])
    return tensor.shape


def _conv(node: Node, graph: Graph, dynamic: list[bool]) -> int:
    out = _shape(graph, node.outputs[0], dynamic)
    weight = _shape(graph, node.inputs[1], dynamic)  # [M, C/group, k1, k2, ...]
    return math.prod(out) * math.prod(weight[1:])


def _conv_transpose(node: Node, graph: Graph, dynamic: list[bool]) -> int:
    x = _shape(graph, node.inputs[0], dynamic)
    weight = _shape(graph, node.inputs[1], dynamic)  # [C, M/group, k1, k2, ...]
    return math.prod(x) * math.prod(weight[1:])


def _matmul(node: Node, graph: Graph, dynamic: list[bool]) -> int:
    a = _shape(graph, node.inputs[0], dynamic)
    b = _shape(graph, node.inputs[1], dynamic)
    k = a[-1]
    # numpy.matmul: a 1-D operand is a vector; the output then has no m (or n) axis.
    m = a[-2] if len(a) > 1 else 1
    n = b[-1] if len(b) > 1 else 1
    batch = math.prod(_broadcast(a[:-2], b[:-2]))
    return batch * m * n * k


def _gemm(node: Node, graph: Graph, dynamic: list[bool]) -> int:
    a = _shape(graph, node.inputs[0], dynamic)
    b = _shape(graph, node.inputs[1], dynamic)
    m, k = (a[1], a[0]) if node.attrs.get("transA", 0) else (a[0], a[1])
    n = b[0] if node.attrs.get("transB", 0) else b[1]
    return m * n * k


def _einsum(node: Node, graph: Graph, dynamic: list[bool]) -> int:
    operands = [i for i in node.inputs if i]
    if len(operands) < 2:
        return 0  # a transpose, trace or sum of one operand: no products
    equation = str(node.attrs["equation"]).replace(" ", "")
    lhs = equation.split("->", 1)[0].split(",")
    sizes: dict[str, int] = {}
    for subscripts, name in zip(lhs, operands, strict=True):
        shape = _shape(graph, name, dynamic)
        letters = _expand_ellipsis(subscripts, len(shape))
        for letter, dim in zip(letters, shape, strict=True):
            sizes[letter] = max(sizes.get(letter, 1), dim)  # a size-1 axis broadcasts
    return math.prod(sizes.values())


def _expand_ellipsis(subscripts: str, rank: int) -> list[str]:
    """``"...ij"`` at rank 4 -> ``["…1", "…0", "i", "j"]``: ellipsis axes named from the right,
    so operands of different rank share them as broadcasting does."""
    letters = re.findall(r"\.\.\.|[A-Za-z]", subscripts)
    if "..." not in letters:
        return letters
    at = letters.index("...")
    count = rank - (len(letters) - 1)
    named = [f"…{count - 1 - j}" for j in range(count)]  # numbered from the last axis
    return [*letters[:at], *named, *letters[at + 1 :]]


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    width = max(len(a), len(b))
    a = (1,) * (width - len(a)) + a
    b = (1,) * (width - len(b)) + b
    return tuple(max(x, y) for x, y in zip(a, b, strict=True))


COUNTERS: Mapping[str, Callable[[Node, Graph, list[bool]], int]] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Einsum": _einsum,
}


def count_macs(graph: Graph) -> MacCount:
    """MACs of every node of ``graph`` (0 for ops that are not counted, see the module doc)."""
    per_node: dict[int, int] = {}
    uncounted: list[int] = []
    dynamic: list[bool] = []
    for node in graph.nodes:
        counter = COUNTERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        if counter is None:
            continue
        try:
            per_node[node.index] = counter(node, graph, dynamic)
        except (_Unknown, IndexError, KeyError, ValueError):
            uncounted.append(node.index)
    return MacCount(
        per_node=per_node, uncounted=tuple(uncounted), dynamic_batch_as_one=bool(dynamic)
    )
